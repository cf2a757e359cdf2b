"""``python -m nnpipe.watchdog PARENT_PID PID``: stop process ``PID`` and every process
under it when process ``PARENT_PID`` is gone.

The temporary Prefect server that ``nnpipe run`` starts is stopped by Prefect's ``atexit``
hook, which ``kill -9`` of ``nnpipe run`` never runs: the server then lived on, orphaned,
holding its port. This watchdog is its own small process (started in its own session,
so Ctrl-C in the terminal does not stop it first): it notices its parent is gone (it is
re-parented), then terminates the server's whole process tree, children first, and kills
what has not exited 5 s later. It exits as soon as the server is gone on its own.
"""

from __future__ import annotations

import os
import signal
import sys
import time

POLL_SECONDS = 0.2
GRACE_SECONDS = 5.0


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid``, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                ppid = int(fh.read().rsplit(")", 1)[-1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            found.append(int(entry))
    return found


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants, deepest first."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += children_of(current)
    return tree[::-1]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def stop_tree(pid: int) -> None:
    tree = process_tree(pid)
    for member in tree:
        try:
            os.kill(member, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline and any(alive(m) for m in tree):
        time.sleep(0.1)
    for member in tree:
        if alive(member):
            try:
                os.kill(member, signal.SIGKILL)
            except ProcessLookupError:
                pass


def watch(parent: int, pid: int) -> None:
    while alive(pid):
        if os.getppid() != parent:  # our parent is gone: we were re-parented
            stop_tree(pid)
            return
        time.sleep(POLL_SECONDS)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch(int(argv[0]), int(argv[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
