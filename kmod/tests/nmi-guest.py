#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""nmi-guest.py MONITOR_SOCKET DELAY [MARKER]: after DELAY seconds, ask the
qemu monitor at MONITOR_SOCKET for an NMI on every guest CPU, first creating
the file MARKER (tests/boot-check.sh's emulator_stuck reads it). run-vm.sh
starts it beside a boot and kills it when the guest ends in time."""
import socket
import sys
import time

path, delay = sys.argv[1], float(sys.argv[2])
time.sleep(delay)
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
