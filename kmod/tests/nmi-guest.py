#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""nmi-guest.py MONITOR_SOCKET DELAY [MARKER]: after DELAY seconds, ask the
qemu monitor at MONITOR_SOCKET for an NMI on every guest CPU, first creating
the file MARKER (tests/boot-check.sh's emulator_stuck reads it). run-vm.sh
starts it beside a boot and kills it when the guest ends in time."""
import os
import socket
import sys
import time

path, delay = sys.argv[1], float(sys.argv[2])
# Sleep in steps, and give up when the harness that started us is gone: an
# orphan would send its NMI to a later boot on the same socket path.
parent, end = os.getppid(), time.monotonic() + delay
while time.monotonic() < end:
    time.sleep(min(1.0, max(0.0, end - time.monotonic())))
    if os.getppid() != parent:
        sys.exit(0)
if len(sys.argv) > 3:
    open(sys.argv[3], "w").close()
try:
    with socket.socket(socket.AF_UNIX) as mon:
        mon.connect(path)
        mon.sendall(b"nmi\n")
        time.sleep(2)
    print(f"run-vm: no end after {delay:.0f} s: sent the guest an NMI (its stacks follow)",
          file=sys.stderr, flush=True)
except OSError as err:
    print(f"run-vm: no end after {delay:.0f} s; no NMI sent ({err})", file=sys.stderr)
