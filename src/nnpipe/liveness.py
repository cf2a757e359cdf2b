"""Who owns a thing a process leaves behind (a staging folder, an MLflow run, the project
lock), and whether that owner still lives: what lets the next run clean up after one that
was killed (``kill -9`` runs no cleanup code) without touching the work of a live one.

An owner is ``host:pid:start``: the pid alone could be reused by an unrelated process,
so its start time (in clock ticks since boot, from ``/proc``) is part of it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass


def stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state, ppid, ...), or
    None if the process is gone or the system has no ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces
    return stat.rsplit(")", 1)[-1].split()


def process_start(pid: int) -> int | None:
    """The start time of process ``pid`` (clock ticks since boot), or None if it is gone
    or the system has no ``/proc``."""
    fields = stat_fields(pid)
    try:
        return int(fields[19]) if fields is not None else None  # field 22 of proc(5)
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    start: int | None

    def token(self) -> str:
        return f"{self.host}:{self.pid}:{self.start if self.start is not None else ''}"

    def is_alive(self) -> bool:
        """Whether the owning process still runs. Another host's owner is assumed alive:
        nothing here can tell."""
        if self.host != socket.gethostname():
            return True
        return pid_is_alive(self.pid, self.start)


def pid_is_alive(pid: int, start: int | None = None) -> bool:
    """Whether ``pid`` runs (and, given ``start``, is the process that started then)."""
    if pid <= 0:
        return False
    now = process_start(pid)
    if now is None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return start is None  # alive, but /proc could not confirm which process it is
    return start is None or now == start


def current_owner() -> Owner:
    pid = os.getpid()
    return Owner(socket.gethostname(), pid, process_start(pid))


def parse_owner(token: str) -> Owner | None:
    """An :class:`Owner` from :meth:`Owner.token`, or None if ``token`` is not one."""
    host, sep, rest = token.rpartition(":")  # host:pid:start, the host may hold ':'
    host, sep2, pid = host.rpartition(":")
    if not (sep and sep2 and pid.isdigit()):
        return None
    return Owner(host, int(pid), int(rest) if rest.isdigit() else None)
