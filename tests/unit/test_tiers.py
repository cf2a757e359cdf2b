"""The unit tier's guards (tests/tier_guards.py) are on in this tier: a connection off the
machine is refused and fails the test, loopback works, Keras training steps are counted,
a subprocess that imports TensorFlow is reported; and no unit test reads the real data."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from tier_guards import GUARD, MAX_TRAINING_STEPS, NetworkInUnitTestError, UnitGuard, is_local

from nnpipe.keras_env import keras

UNIT = Path(__file__).resolve().parent
TEST_NET = "192.0.2.1"  # RFC 5737: documentation only, never routed


@pytest.fixture
def unit_guard(request: pytest.FixtureRequest) -> UnitGuard:
    """The guard watching this test."""
    return request.node.stash[GUARD]


@pytest.mark.parametrize(
    "host, local",
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("api.localhost", True),
        (b"localhost", True),
        (None, True),
        ("", True),
        (TEST_NET, False),
        ("10.0.0.1", False),
        ("2001:db8::1", False),
        ("query1.finance.yahoo.com", False),
        ("mlflow", False),  # a name to resolve: DNS is the network
    ],
)
def test_only_loopback_addresses_and_names_are_local(host, local):
    assert is_local(host) is local


def test_a_connection_off_the_machine_is_refused_and_would_fail_the_test(unit_guard):
    assert unit_guard.network == [] and unit_guard.problems() == []
    with socket.socket() as sock, pytest.raises(NetworkInUnitTestError, match="tests/realdata"):
        sock.settimeout(1)
        sock.connect((TEST_NET, 9))
    with socket.socket() as sock, pytest.raises(NetworkInUnitTestError):
        sock.settimeout(1)
        sock.connect_ex((TEST_NET, 9))
    with pytest.raises(NetworkInUnitTestError, match=r"name look-up of 'example\.org'"):
        socket.create_connection(("example.org", 80), timeout=1)
    with pytest.raises(urllib.error.URLError) as info:  # what a client with retries sees
        no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        no_proxy.open(f"http://{TEST_NET}:9/", timeout=1)
    assert isinstance(info.value.reason, NetworkInUnitTestError)
    assert len(unit_guard.network) == 4
    # a test that swallowed the errors still fails: its teardown reports this
    [problem] = unit_guard.problems()
    assert f"connect to ('{TEST_NET}', 9)" in problem and "tests/realdata" in problem
    unit_guard.network.clear()  # this test planted them


def test_loopback_connections_work(unit_guard):
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        with socket.create_connection(("localhost", port), timeout=5):
            pass
    assert unit_guard.network == [] and unit_guard.problems() == []


def test_keras_training_steps_are_counted(unit_guard):
    """Every batch of fit, callbacks given or not, and every train_on_batch; past the
    limit the test would fail."""
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
    model.compile("sgd", "mse")
    x, y = np.zeros((10, 2), "float32"), np.zeros((10, 1), "float32")
    seen: list[int] = []
    mine = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(1))
    model.fit(x, y, batch_size=5, epochs=2, verbose=0, callbacks=[mine])
    assert len(seen) == 4  # the test's own callback still runs
    model.fit(x, y, 5, 1, 0)  # positional arguments
    model.train_on_batch(x, y)
    assert unit_guard.training_steps == 7 and unit_guard.problems() == []
    unit_guard.training_steps = MAX_TRAINING_STEPS + 1
    [problem] = unit_guard.problems()
    assert f"trained {MAX_TRAINING_STEPS + 1} Keras steps" in problem
    assert "tests/integration" in problem
    unit_guard.training_steps = 0


def test_a_python_subprocess_importing_tensorflow_is_reported(unit_guard, tmp_path):
    """Looking TensorFlow up is no import; running its package is. The child here imports
    a stand-in ``tensorflow`` package (first on its path), so this test does not pay for
    the import it reports."""
    look_up = "import importlib.util; assert importlib.util.find_spec('tensorflow')"
    subprocess.run([sys.executable, "-c", look_up], check=True, cwd=tmp_path)
    assert unit_guard.tf_subprocesses() == []
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text("STAND_IN = True\n")
    code = "import tensorflow; assert tensorflow.STAND_IN"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
    [command] = unit_guard.tf_subprocesses()
    assert command == f"{sys.executable} -c"
    [problem] = unit_guard.problems()
    assert "1 of its subprocesses imported TensorFlow" in problem
    assert "tests/integration" in problem
    assert unit_guard.tf_log is not None
    unit_guard.tf_log.write_text("")  # this test planted it


def test_no_unit_test_reads_the_real_data():
    """../shared/data is tests/realdata's (its shared_data helper skips where absent)."""
    real_data = re.compile(r"shared_data\(|SHARED_DATA|shared/data|[\"']shared[\"'] */ *[\"']data")
    readers = [
        path.relative_to(UNIT).as_posix()
        for path in UNIT.rglob("*.py")
        if path != Path(__file__).resolve() and real_data.search(path.read_text())
    ]
    assert readers == [], f"move these to tests/realdata: {readers}"
