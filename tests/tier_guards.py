"""What keeps the unit tier's promise (``TIERS`` in tests/conftest.py, which applies this
to every test under tests/unit): a unit test that connects off this machine, trains
TensorFlow for more than a few steps or starts a Python process that imports TensorFlow
fails, saying what it did and where such a test belongs (tests/realdata,
tests/integration).

A guard watches one test from its set-up (module fixtures included: they count in the
first test that builds them) to its teardown. Sockets and training are watched in this
process; subprocesses through ``tier_guards_site/sitecustomize.py`` on PYTHONPATH (a test
that sets PYTHONPATH itself opts its subprocesses out). Its own tests:
tests/unit/test_tiers.py."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# "A few steps": the training batches (optimizer updates) one unit test may run in all,
# over every Keras fit and train_on_batch, its module fixtures' included. A test that must
# train further to prove its point (a model learning a toy problem to a threshold) lives
# in tests/integration.
MAX_TRAINING_STEPS = 16
SITE = Path(__file__).resolve().parent / "tier_guards_site"
TF_LOG_VARIABLE = "NNPIPE_UNIT_TIER_TF_LOG"  # read by tier_guards_site/sitecustomize.py
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def is_local(host: object) -> bool:
    """A loopback or unspecified (this host) address, or a loopback name: traffic that
    never leaves the machine. Any other name needs DNS, which is the network."""
    if host in (None, "", b""):
        return True
    name = host.decode() if isinstance(host, bytes) else str(host)
    name = name.split("%", 1)[0].strip("[]").lower()  # an IPv6 scope, URL brackets
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


class NetworkInUnitTestError(ConnectionRefusedError):
    """What an off-machine connection meets in a unit test: an OSError (a refused
    connection), so the code under test behaves as offline; the test fails regardless."""


@dataclass
class UnitGuard:
    """What one unit test did that tests/unit does not allow."""

    network: list[str] = field(default_factory=list)
    training_steps: int = 0
    max_training_steps: int = MAX_TRAINING_STEPS
    tf_log: Path | None = None  # where subprocesses that import TensorFlow say so

    def tf_subprocesses(self) -> list[str]:
        if self.tf_log is None or not self.tf_log.exists():
            return []
        return self.tf_log.read_text(encoding="utf-8").splitlines()

    def refuse_network(self, what: str) -> None:
        self.network.append(what)
        raise NetworkInUnitTestError(
            f"a unit test tried the network ({what}): tests/unit runs offline; serve what "
            "the test needs on 127.0.0.1, or move it to tests/realdata (marker network)"
        )

    def problems(self) -> list[str]:
        found = []
        if self.network:
            found.append(
                "it tried the network, which tests/unit does not use (serve on 127.0.0.1, "
                f"or move it to tests/realdata, marker network): {'; '.join(self.network)}"
            )
        if self.training_steps > self.max_training_steps:
            found.append(
                f"it trained {self.training_steps} Keras steps; tests/unit trains "
                f"{self.max_training_steps} at most: check the property in fewer steps, "
                "or move the test to tests/integration"
            )
        if commands := self.tf_subprocesses():
            found.append(
                f"{len(commands)} of its subprocesses imported TensorFlow, which takes "
                "seconds each: do it in this process, or move the test to "
                f"tests/integration ({'; '.join(commands)})"
            )
        return found


def _host(sock: socket.socket, address: Any) -> object:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
        return address[0]
    return None  # AF_UNIX and the other local families


def patches(guard: UnitGuard) -> list[tuple[Any, str, Callable[..., Any]]]:
    """(owner, attribute, replacement): the socket calls that reach another machine, and
    Keras 2's training calls where a test module has imported it."""
    sock = socket.socket
    connect, connect_ex, sendto = sock.connect, sock.connect_ex, sock.sendto
    getaddrinfo = socket.getaddrinfo

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if not is_local(_host(self, address)):
            guard.refuse_network(f"connect to {address!r}")
        return connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        if not is_local(_host(self, address)):
            guard.refuse_network(f"connect_ex to {address!r}")
        return connect_ex(self, address)

    def guarded_sendto(self: socket.socket, data: Any, *args: Any) -> int:
        if args and not is_local(_host(self, args[-1])):
            guard.refuse_network(f"sendto {args[-1]!r}")
        return sendto(self, data, *args)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_local(host):
            guard.refuse_network(f"name look-up of {host!r}")
        return getaddrinfo(host, *args, **kwargs)

    found: list[tuple[Any, str, Callable[..., Any]]] = [
        (sock, "connect", guarded_connect),
        (sock, "connect_ex", guarded_connect_ex),
        (sock, "sendto", guarded_sendto),
        (socket, "getaddrinfo", guarded_getaddrinfo),
    ]
    keras = sys.modules.get("tf_keras")
    if keras is not None:
        model = keras.Model
        fit, train_on_batch = model.fit, model.train_on_batch

        class CountSteps(keras.callbacks.Callback):
            def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                guard.training_steps += 1

        def counted_fit(self: Any, *args: Any, **kwargs: Any) -> Any:
            if len(args) > 5:  # x, y, batch_size, epochs, verbose, callbacks, ...
                args = (*args[:5], [*(args[5] or []), CountSteps()], *args[6:])
            else:
                kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), CountSteps()]
            return fit(self, *args, **kwargs)

        def counted_train_on_batch(self: Any, *args: Any, **kwargs: Any) -> Any:
            guard.training_steps += 1
            return train_on_batch(self, *args, **kwargs)

        found += [(model, "fit", counted_fit), (model, "train_on_batch", counted_train_on_batch)]
    return found


GUARD = pytest.StashKey[UnitGuard]()
_UNDO = pytest.StashKey[pytest.MonkeyPatch]()


def start(item: pytest.Item) -> None:
    """Watch ``item`` (before its fixtures are set up)."""
    handle, log = tempfile.mkstemp(prefix="nnpipe-unit-tf-", suffix=".log")
    os.close(handle)
    guard = UnitGuard(tf_log=Path(log))
    monkeypatch = pytest.MonkeyPatch()
    for owner, name, replacement in patches(guard):
        monkeypatch.setattr(owner, name, replacement)
    monkeypatch.setenv(TF_LOG_VARIABLE, log)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(p for p in (str(SITE), os.environ.get("PYTHONPATH")) if p)
    )
    item.stash[GUARD] = guard
    item.stash[_UNDO] = monkeypatch


def stop(item: pytest.Item) -> list[str]:
    """Stop watching ``item`` (after its teardown); what it did that tests/unit forbids."""
    if _UNDO in item.stash:
        item.stash[_UNDO].undo()
        del item.stash[_UNDO]
    if GUARD not in item.stash:
        return []
    guard = item.stash[GUARD]
    problems = guard.problems()
    if guard.tf_log is not None:
        guard.tf_log.unlink(missing_ok=True)
    return problems
