"""``python -m nnpipe.watchdog PARENT_PID PID``: stop process ``PID`` and every process
under it when process ``PARENT_PID`` is gone.

The temporary Prefect server that ``nnpipe run`` starts is stopped by Prefect's ``atexit``
hook, which ``kill -9`` of ``nnpipe run`` never runs: the server then lived on, orphaned,
holding its port. This watchdog is its own small process (started in its own session,
so Ctrl-C in the terminal does not stop it first): it notices its parent is gone (it is
re-parented), then terminates the server's whole process tree, children first, and kills
what has not exited 5 s later. It exits as soon as the server is gone on its own.
``nnpipe run`` watches each domain's flow process the same way (:func:`stop_with_me`).
"""

from __future__ import annotations

import os
import signal
import sys
import time

from nnpipe.liveness import stat_fields

POLL_SECONDS = 0.2
GRACE_SECONDS = 5.0


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid``, from /proc."""
    return [
        int(entry)
        for entry in os.listdir("/proc")
        if entry.isdigit() and (stat_fields(int(entry)) or [])[1:2] == [str(pid)]
    ]


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
    fields = stat_fields(pid)
    return bool(fields and fields[0] != "Z")  # a zombie has exited


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


def stop_with_me(pid: int) -> None:
    """Start a watchdog that stops process ``pid``'s tree if this process dies first."""
    import subprocess

    subprocess.Popen(
        [sys.executable, "-m", __name__, str(os.getpid()), str(pid)],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch(int(argv[0]), int(argv[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
