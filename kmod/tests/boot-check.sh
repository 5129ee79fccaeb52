# The VM harness's one retry of a guest that failed to boot, sourced by
# run-vm.sh and virtio-host.sh (bash).
#
# A guest can fail before any of hpio's code ran: a 6.12 guest once oopsed
# 2.9 s into its boot under qemu TCG (int3 in sched_clock_cpu), and the
# suite failed with "the guest did not come up". Such a boot is tried once
# more. A guest is taken as booted once /init prints its first line
# ("== hpio VM: ...", tests/vm-init.sh), and hpio.ko is loaded only after
# that line: so a failure after it is never retried (it is a real one).

# The line /init prints once the guest is up, before hpio.ko is loaded
# (not anchored: the firmware's terminal escapes may come first on its line).
BOOTED_LINE='== hpio VM: '
# What a kernel in trouble prints (panic_on_warn=1 and oops=panic: each ends the guest).
KERNEL_PROBLEM='Oops|BUG:|WARNING:|Kernel panic|Call Trace'

# boot_failed SERIAL_LOG: true when the guest failed before hpio.ko could
# be loaded: it never printed the booted line, or the kernel reported a
# problem before it.
boot_failed() {
	local at
	at=$(tr -d '\r' 2>/dev/null <"$1" | grep -n -m1 -E "$BOOTED_LINE" | cut -d: -f1)
	[ -n "$at" ] || return 0
	tr -d '\r' <"$1" | head -n "$((at - 1))" | grep -qE "$KERNEL_PROBLEM"
}

# emulator_stuck SERIAL_LOG: true when the host sent the guest an NMI shortly
# before the VM's timeout (nmi-guest.py leaves SERIAL_LOG.nmi) and the guest
# never answered. A kernel answers any NMI, even with interrupts off on every
# CPU: with unknown_nmi_panic it prints "NMI received" and panics with its
# stacks. No answer means the emulator itself stopped running the guest,
# which says nothing about hpio: such a run is booted once more.
emulator_stuck() {
	[ -e "$1.nmi" ] && ! tr -d '\r' 2>/dev/null <"$1" | grep -qE "NMI received|NMI: Not continuing"
}

# boot_with_retry SERIAL_LOG RESET BOOT...: runs BOOT (which boots the
# guest and leaves its console in SERIAL_LOG); when that boot failed before
# hpio.ko (boot_failed), keeps its log as SERIAL_LOG's .boot1.log, runs
# RESET (undoes what BOOT set up; `true` for nothing) and BOOT once more.
# Returns the status of the last BOOT.
boot_with_retry() {
	local log=$1 reset=$2 rc first
	shift 2
	"$@"
	rc=$?
	if boot_failed "$log" || emulator_stuck "$log"; then
		first=${log%.log}.boot1.log
		if boot_failed "$log"; then
			echo "== guest boot failed (not hpio.ko): retrying once (first serial log: $first)"
		else
			echo "== the emulator stopped (the guest never answered an NMI): retrying once (first serial log: $first)"
		fi
		mv -f "$log" "$first" 2>/dev/null || : >"$first"
		rm -f "$log.nmi"
		tr -d '\r' <"$first" | grep -E "$KERNEL_PROBLEM" | head -n 3 | sed 's/^/   first boot: /'
		"$reset"
		"$@"
		rc=$?
	fi
	return "$rc"
}
