#!/usr/bin/env python3
"""The host end of the HIL VM's 16550 (scripts/hil): reads the bytes emotiond writes to the guest's
/dev/ttyS0 from QEMU's unix socket and appends them to a file, as a terminal on the other end of a
UART would show them.

It can also go away and come back, for the "reader gone" fault of tests/hil/guest/lib.sh: when the
VM's console (a file QEMU writes) shows a "T_READER gone" line it closes the socket, and when it
shows "T_READER back" it connects again. What the guest writes meanwhile is lost on the way, as on
a real wire whose terminal is closed; emotiond cannot tell.

usage: serial_reader.py SOCKET OUT CONSOLE
Ends when QEMU closes the socket (the VM powered off) or after 20 minutes.
"""
import os
import select
import socket
import sys
import time


def connect(path, until):
    while time.monotonic() < until:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            return s
        except OSError:
            s.close()
            time.sleep(0.05)
    sys.exit(f"serial_reader: no socket at {path}")


def main():
    path, out_path, console_path = sys.argv[1:4]
    end = time.monotonic() + 20 * 60
    sock = connect(path, time.monotonic() + 60)
    seen = 0  # how much of the console has been looked at
    with open(out_path, "ab") as out:
        while time.monotonic() < end:
            if sock is not None:
                ready, _, _ = select.select([sock], [], [], 0.05)
                if ready:
                    data = sock.recv(65536)
                    if not data:
                        return  # QEMU closed it: the VM is off
                    out.write(data)
                    out.flush()
            else:
                time.sleep(0.05)
            try:
                with open(console_path, "rb") as c:
                    c.seek(seen)
                    text = c.read()
            except OSError:
                text = b""
            # Only whole lines count; the rest is read again next time.
            text = text[: text.rfind(b"\n") + 1]
            seen += len(text)
            for line in text.splitlines():
                if line.startswith(b"T_READER gone") and sock is not None:
                    sock.close()
                    sock = None
                elif line.startswith(b"T_READER back") and sock is None:
                    sock = connect(path, time.monotonic() + 30)
                elif line.startswith(b"T_POWEROFF") and sock is None:
                    return
            if sock is None and not os.path.exists(path):
                return


if __name__ == "__main__":
    main()
