// SPDX-License-Identifier: GPL-2.0
/*
 * Who may open /dev/hpio/<ifname>: CAP_NET_RAW over the device's network
 * namespace (as for AF_PACKET), whatever the node's file mode allows.
 * Each case runs in a child process that changes its credentials and
 * reports the errno of its opens.
 */
#include "harness.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PERM_IF		"hpperm0"
#define PERM_PEER	"hpperm1"
#define PERM_NODE	"/dev/hpio/" PERM_IF
#define NOBODY		65534

/* How a child sets itself up before opening the node. */
enum perm_who {
	WHO_NOBODY,		/* uid/gid 65534, no capability */
	WHO_NOBODY_NET_RAW,	/* uid 65534 keeping CAP_NET_RAW alone */
	WHO_ROOT_NO_NET_RAW,	/* uid 0 without CAP_NET_RAW */
	WHO_USERNS_ROOT,	/* root of a new user namespace (uid 0 mapped) */
	WHO_USERNS_NOBODY,	/* uid 65534, then root of a new user namespace */
	WHO_USERNS_NETNS,	/* root of a new user namespace that owns a new netns */
};

/* Keep only the capabilities of @mask (effective, permitted). */
static int caps_keep(uint64_t mask)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = {};

	d[0].effective = d[0].permitted = (uint32_t)mask;
	d[1].effective = d[1].permitted = (uint32_t)(mask >> 32);
	return syscall(SYS_capset, &h, d);
}

static int to_nobody(bool keep_caps)
{
	if (keep_caps && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0))
		return -1;
	if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
	    setresuid(NOBODY, NOBODY, NOBODY))
		return -1;
	/* A uid change makes the process undumpable, and /proc/self then
	 * belongs to root: uid_map could not be written. */
	return prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

/* Become root of a new user namespace whose uid 0 is our uid. */
static int userns_root(int extra_flags)
{
	char map[32];
	uid_t uid = geteuid();

	if (unshare(CLONE_NEWUSER | extra_flags))
		return -1;
	/* The gid map needs setgroups denied for an unprivileged writer. */
	write_str("/proc/self/setgroups", "deny");
	snprintf(map, sizeof(map), "0 %u 1", uid);
	if (write_str("/proc/self/uid_map", map)) {
		printf("     (cannot write uid_map \"%s\")\n", map);
		return -1;
	}
	return 0;
}

static int perm_setup(enum perm_who who)
{
	switch (who) {
	case WHO_NOBODY:
		return to_nobody(false);
	case WHO_NOBODY_NET_RAW:
		return to_nobody(true) || caps_keep(1ull << CAP_NET_RAW);
	case WHO_ROOT_NO_NET_RAW:
		return caps_keep(~0ull >> 23 & ~(1ull << CAP_NET_RAW));
	case WHO_USERNS_ROOT:
		return userns_root(0);
	case WHO_USERNS_NOBODY:
		return to_nobody(false) || userns_root(0);
	case WHO_USERNS_NETNS:
		return userns_root(CLONE_NEWNET);
	}
	return -1;
}

/*
 * In a child set up as @who, open the node with each of O_RDONLY, O_WRONLY
 * and O_RDWR.  Returns the common errno (0: all opened), 200 when they
 * differ, 201 when the setup failed.
 */
static int perm_try(enum perm_who who)
{
	static const int modes[] = { O_RDONLY, O_WRONLY, O_RDWR };
	int status, first = -1;
	unsigned int i;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (perm_setup(who)) {
			printf("     (setup failed: %s)\n", strerrorname_np(errno) ?: "?");
			fflush(stdout);
			_exit(201);
		}
		for (i = 0; i < 3; i++) {
			int fd = open(PERM_NODE, modes[i] | O_NONBLOCK);
			int e = fd < 0 ? errno : 0;

			if (fd >= 0)
				close(fd);
			if (first >= 0 && e != first)
				_exit(200);
			first = e;
		}
		_exit(first);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static void perm_check(enum perm_who who, int want, const char *what)
{
	int got = perm_try(who);

	CHECK(got == want, "%s: open %s (got %s, want %s)", what,
	      want ? "refused" : "allowed",
	      got == 201 ? "setup failed" : got == 200 ? "mixed" :
	      got == 0 ? "success" : strerrorname_np(got) ?: "?",
	      want ? strerrorname_np(want) : "success");
}

void test_perm(void)
{
	section("permissions");
	if (veth_add(PERM_IF, PERM_PEER, 0x70, 0x71) ||
	    !wait_path(PERM_NODE, true, 2000)) {
		CHECK(false, "permissions: veth pair and node");
		return;
	}
	CHECK(chmod(PERM_NODE, 0666) == 0, "chmod 0666 %s", PERM_NODE);

	perm_check(WHO_NOBODY, EPERM,
		   "uid 65534, node mode 0666, no CAP_NET_RAW");
	perm_check(WHO_NOBODY_NET_RAW, 0,
		   "uid 65534 with CAP_NET_RAW alone");
	perm_check(WHO_ROOT_NO_NET_RAW, EPERM,
		   "uid 0 without CAP_NET_RAW");
	perm_check(WHO_USERNS_ROOT, EPERM,
		   "root of a user namespace (unshare -U -r as root)");
	perm_check(WHO_USERNS_NOBODY, EPERM,
		   "root of a user namespace (unshare -U -r as uid 65534)");
	perm_check(WHO_USERNS_NETNS, EPERM,
		   "root of a user namespace owning another netns (unshare -U -r -n)");
	CHECK(hp_sysfs(PERM_IF, "readers") == 0 &&
	      !(hp_sysfs(PERM_IF, "ring_size") > 0),
	      "refused opens left no reader and no ring behind");

	CHECK(chmod(PERM_NODE, 0600) == 0, "chmod 0600 %s", PERM_NODE);
	perm_check(WHO_NOBODY_NET_RAW, EACCES,
		   "uid 65534 with CAP_NET_RAW, node mode 0600 (file mode still applies)");
	perm_check(WHO_NOBODY, EACCES, "uid 65534, node mode 0600");
	link_del(PERM_IF);
}
