#!/usr/bin/env bash
# Tests of tests/boot-check.sh (make -C kmod check-harness): which serial
# logs count as a boot failure, and that a failed boot is retried exactly
# once, keeping the first log, while a failure after hpio.ko is not.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/boot-check.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
passed=0
failed=0
ok() { # ok DESCRIPTION COMMAND...
	local d=$1
	shift
	if "$@"; then passed=$((passed + 1)); else echo "FAIL boot-check: $d"; failed=$((failed + 1)); fi
}
not() { ! "$@"; }

# The early oops seen under TCG (shortened), before /init ran.
early_oops() {
	printf '%s\r\n' "[    2.913204] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI" \
		"[    2.913911] RIP: 0010:sched_clock_cpu+0x1/0x40" \
		"[    2.914500] Kernel panic - not syncing: Fatal exception"
}
# As the console shows it: SeaBIOS's terminal escapes before /init's first line.
booted() {
	printf 'SeaBIOS (version 1.16.2)\r\nBooting from ROM...\r\n'
	printf '\033c\033[?7l\033[2J%s\r\n' "== hpio VM: 6.12.9-amd64, 2 CPU(s)" "ok   hpio: insmod hpio.ko"
}
late_oops() {
	printf '%s\r\n' "[   40.100000] BUG: unable to handle page fault" "[   40.100100] Call Trace:" \
		"[   40.100200] Kernel panic - not syncing: Fatal exception"
}

early_oops >"$T/early.log"
ok "an oops before /init is a boot failure" boot_failed "$T/early.log"
: >"$T/empty.log"
ok "an empty log (qemu never ran) is a boot failure" boot_failed "$T/empty.log"
ok "a missing log is a boot failure" boot_failed "$T/none.log"
printf 'Booting the kernel.\r\n' >"$T/hung.log"
ok "a guest that never printed its first line is a boot failure" boot_failed "$T/hung.log"
{ early_oops; booted; } >"$T/both.log"
ok "an oops before the first line counts even if the line came" boot_failed "$T/both.log"
{ booted; late_oops; } >"$T/late.log"
ok "an oops after hpio.ko could load is not a boot failure" not boot_failed "$T/late.log"
{ booted; echo "40 passed, 0 failed"; } >"$T/good.log"
ok "a good run is not a boot failure" not boot_failed "$T/good.log"

# A fake boot: writes the next log of LOGS (one name per attempt) to the
# serial log; fails when that log has no summary.
fake_boot() {
	local next=${LOGS%% *}
	LOGS=${LOGS#* }
	boots=$((boots + 1))
	cp "$T/$next.log" "$T/serial.log"
	grep -q "passed" "$T/serial.log"
}
resets=0
reset() { resets=$((resets + 1)); }

boots=0 LOGS="early good "
boot_with_retry "$T/serial.log" reset fake_boot >"$T/out"
rc=$?
ok "a failed boot is retried once and the retry's status returned" test $rc = 0 -a $boots = 2 -a $resets = 1
ok "the retry says why" grep -q "guest boot failed (not hpio.ko): retrying once" "$T/out"
ok "the first boot's log is kept" grep -q "sched_clock_cpu" "$T/serial.boot1.log"
ok "the serial log is the second boot's" grep -q "40 passed" "$T/serial.log"

rm -f "$T/serial.boot1.log"
boots=0 resets=0 LOGS="late late "
boot_with_retry "$T/serial.log" reset fake_boot >"$T/out"
rc=$?
ok "a failure after hpio.ko loaded is not retried" test $rc != 0 -a $boots = 1 -a $resets = 0
ok "nor said to be a boot failure" not grep -q "retrying" "$T/out"
ok "no first log is left" test ! -e "$T/serial.boot1.log"

boots=0 resets=0 LOGS="early early early "
boot_with_retry "$T/serial.log" reset fake_boot >/dev/null
rc=$?
ok "two failed boots: only one retry, and the run fails" test $rc != 0 -a $boots = 2 -a $resets = 1

boots=0 resets=0 LOGS="good "
boot_with_retry "$T/serial.log" reset fake_boot >/dev/null
ok "a good boot runs once" test $? = 0 -a $boots = 1 -a $resets = 0

# The emulator stopped: an NMI was sent (the marker) and the guest never answered.
{ booted; echo "ok   fuzz: hpio.ko loaded"; } >"$T/frozen.log"
: >"$T/frozen.log.nmi"
ok "a guest that never answered the NMI: the emulator stopped" emulator_stuck "$T/frozen.log"
{ booted; printf '%s\r\n' "[  840.1] Uhhuh. NMI received for unknown reason 30 on CPU 0." \
	"[  840.1] Kernel panic - not syncing: NMI: Not continuing"; } >"$T/answered.log"
: >"$T/answered.log.nmi"
ok "a guest that answered the NMI (a kernel hang) is not the emulator's" not emulator_stuck "$T/answered.log"
ok "no NMI sent: not the emulator's" not emulator_stuck "$T/late.log"

# A fake boot whose guest hangs until the NMI: leaves the marker, as
# nmi-guest.py does.
frozen_boot() {
	boots=$((boots + 1))
	cp "$T/frozen.log" "$T/serial.log"
	: >"$T/serial.log.nmi"
	return 1
}
rm -f "$T/serial.boot1.log"
boots=0 resets=0
boot_with_retry "$T/serial.log" reset frozen_boot >"$T/out"
rc=$?
ok "a stopped emulator is retried once, and two stops fail" test $rc != 0 -a $boots = 2 -a $resets = 1
ok "the retry says the emulator stopped" grep -q "the emulator stopped (the guest never answered an NMI): retrying once" "$T/out"

echo "boot-check: $passed passed, $failed failed"
[ "$failed" = 0 ]
