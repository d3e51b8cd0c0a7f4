#!/usr/bin/env python3
"""waitfor.py FILE TEXT [SECONDS] [--from N]: wait until FILE contains TEXT
(after byte N with --from), woken by inotify on FILE's directory (writes,
renames into place), not by sleeping; SECONDS (default 10) is a deadline
that only turns a hang into a failure. Exit 0 when found, 1 on the deadline.
Also a module: wait_for(path, text, start, timeout)."""
import ctypes
import os
import select
import sys
import time

IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE = 0x2, 0x8, 0x80, 0x100


def found(path, text, start):
    try:
        with open(path, "rb") as f:
            f.seek(start)
            return text.encode() in f.read()
    except FileNotFoundError:
        return False


def wait_for(path, text, start=0, timeout=10.0):
    """True once @path holds @text after byte @start; False at the deadline."""
    deadline = time.monotonic() + timeout
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_CLOEXEC)
    if fd < 0 or libc.inotify_add_watch(fd, os.path.dirname(os.path.abspath(path)).encode(),
                                        IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0:
        raise OSError(ctypes.get_errno(), "inotify")
    try:
        # watch first, then look: a write between the two still wakes us
        while not found(path, text, start):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([fd], [], [], left)
            if r:
                os.read(fd, 65536)
        return True
    finally:
        os.close(fd)


def main(argv):
    start = 0
    if "--from" in argv:
        i = argv.index("--from")
        start = int(argv[i + 1])
        del argv[i:i + 2]
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    path, text = argv[1], argv[2]
    return 0 if wait_for(path, text, start, float(argv[3]) if len(argv) == 4 else 10.0) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
