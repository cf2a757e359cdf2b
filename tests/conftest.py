"""Shared fixtures: a throw-away copy of the project with tiny params, isolated stores."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Generator
from pathlib import Path

import durations
import pytest
import tier_guards
import yaml

from nnpipe.ports import free_port  # noqa: F401 (the tests take it from here)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
BIN = Path(sys.executable).parent

# Small enough to run every stage in seconds on 2 CPU cores, large enough to learn.
TINY_PARAMS = {
    "xray": {
        "ingest": {"synthetic": {"n_images": 320, "image_size": 48}},
        "featurize": {"image_size": 32},
        "train": {
            "model": "medical_cnn",
            "filters": [8, 16, 32],
            "dense_units": 16,
            "epochs": 4,
            "batch_size": 16,
            "learning_rate": 0.003,
        },
        "tune": {
            "max_trials": 2,
            "epochs": 1,
            "search_space": {
                "dropout": {"range": [0.1, 0.4]},
                "learning_rate": {"range": [0.001, 0.01], "sampling": "log"},
            },
        },
        "compress": {"latency_runs": 5, "representative_samples": 16, "prune": {"epochs": 1}},
        "register": {"min_value": 0.0},
    },
    "ohlcv": {
        "ingest": {"synthetic": {"n_days": 320}},
        "featurize": {"look_back": 10},
        "tune": {
            "max_trials": 2,
            "epochs": 1,
            "search_space": {"units": {"choice": [[8], [12]]}, "dropout": {"range": [0.0, 0.3]}},
        },
        "train": {"units": [12], "epochs": 3, "batch_size": 32},
        "evaluate": {
            "walk_forward_folds": 2,
            "walk_forward_min_train": 120,
            "walk_forward_epochs": 1,
        },
        # every LSTM conversion takes seconds: the other variants' paths are the X-ray's
        # (LSTM pruning has its unit test)
        "compress": {
            "latency_runs": 5,
            "representative_samples": 16,
            "variants": ["keras_float32", "tflite_float32", "tflite_int8"],
            "prune": {"epochs": 1},
        },
    },
}
PROJECT_FILES = (
    "params.yaml",
    "dvc.yaml",
    "prefect.yaml",
    "pyproject.toml",
    "flows",
    "profiles",
    ".dvc/config",
    ".dvc/plots",
    ".dvcignore",
    ".gitignore",
)


def pytest_configure(config: pytest.Config) -> None:
    """One TensorFlow intra-op thread per process, set before anything imports TensorFlow
    (test modules do, at collection) and inherited by every process the tests start. The
    xdist workers, the flow project's build and the stage processes they start share the
    machine's cores; TensorFlow's default pools (a thread per core in every process)
    oversubscribe them and spin: three concurrent test processes on 2 cores ran 26% faster
    with one intra-op thread each (96 s to 71 s)."""
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "2")


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test saying why."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"real data {path} is absent (it lives beside the project in this "
            "workplace, not in a fresh clone elsewhere)"
        )
    return path


def deep_update(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def make_project(dest: Path, params: dict | None = None) -> Path:
    """A git + DVC checkout of the project's pipeline files, with ``params`` merged in.

    ``src/`` is copied so that ``dvc.yaml``'s code dependencies resolve; the code that runs
    is the installed package, which is the same files.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    shutil.copytree(
        ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    deep_update(raw, yaml.safe_load(yaml.safe_dump(TINY_PARAMS)))
    deep_update(raw, params or {})
    (dest / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    _copy_plots_template(dest)
    git(dest, "init", "-q")
    git(dest, "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    git(dest, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "project")
    return dest


def _copy_plots_template(dest: Path) -> None:
    """The offline `dvc plots` page that `make setup` writes (made once, then copied)."""
    from nnpipe.dvc.plots import ensure_template, template_path

    shutil.copy2(ensure_template(ROOT), template_path(dest))


@pytest.fixture(autouse=True, scope="session")
def _isolated_env(tmp_path_factory: pytest.TempPathFactory):
    """No test touches the user's MLflow store, Prefect home or the project's own files."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("PREFECT_API_URL", raising=False)
        mp.setenv("PREFECT_HOME", str(tmp_path_factory.mktemp("prefect-home")))
        mp.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        mp.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
        mp.setenv("PREFECT_LOGGING_EXTRA_LOGGERS", "nnpipe")
        mp.setenv("DO_NOT_TRACK", "1")
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")  # MLflow reads DO_NOT_TRACK as "true" only
        mp.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
        mp.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
        yield


@pytest.fixture(autouse=True)
def _no_tracking_uri_leaks(monkeypatch: pytest.MonkeyPatch):
    """``mlflow.set_tracking_uri`` exports MLFLOW_TRACKING_URI; undo it after every test, or
    the next test's stages would log to this test's store."""
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(key, raising=False)
    yield
    # and the URI a stage set in this process: the next test must not inherit its store
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    tracking_utils._tracking_uri = None
    registry_utils._registry_uri = None


@contextlib.contextmanager
def working_directory(path: Path):
    old = Path.cwd()
    os.chdir(path)
    try:
        yield path
    finally:
        os.chdir(old)


@contextlib.contextmanager
def started_process(
    cmd: list[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None
):
    """A server process, stopped (terminate, then kill) on exit; see :func:`wait_http`."""
    log = log_path.open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        log.close()


def wait_http(proc: subprocess.Popen, url: str, log_path: Path, timeout: float = 180) -> None:
    """Wait until ``url`` answers 200; fail with the server's log if it dies or times out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{proc.args[0]} did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.5)


@contextlib.contextmanager
def server_process(
    cmd: list[str],
    health_url: str,
    log_path: Path,
    env: dict[str, str] | None = None,
    timeout: float = 180,
    cwd: Path | None = None,
):
    """Start a real server on loopback, wait until ``health_url`` answers 200, stop it after."""
    with started_process(cmd, log_path, env, cwd) as proc:
        wait_http(proc, health_url, log_path, timeout)
        yield proc


def nnpipe(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the ``nnpipe`` command in ``project``, as a user would (a fresh process)."""
    done = subprocess.run(
        [str(BIN / "nnpipe"), *args], cwd=project, capture_output=True, text=True, timeout=1200
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"nnpipe {' '.join(args)} failed ({done.returncode}):\n"
            f"{done.stdout[-4000:]}\n{done.stderr[-8000:]}"
        )
    return done


def _flow_paths(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> tuple[Path, Path]:
    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent  # all xdist workers see it
    return shared, shared / "flow" / "project"


def _needs_flow_project(item: pytest.Item) -> bool:
    """A test uses the flow project as a fixture, or asks for it later (marked so)."""
    return bool(
        {"flow_project", "flow_copy"} & set(getattr(item, "fixturenames", ()))
        or item.get_closest_marker("flow_project")
    )


def _start_flow_build(shared: Path, project: Path) -> None:
    """Start `nnpipe run` on a fresh tiny project in the background, once per test run."""
    from filelock import FileLock

    with FileLock(str(shared / "flow.lock")):
        if (project.parent / "build.started").exists():
            return
        shutil.rmtree(project.parent, ignore_errors=True)
        make_project(project)
        (project.parent / "build.started").touch()
        subprocess.Popen(
            [
                "sh",
                "-c",
                "nnpipe run > run.log 2>&1; echo $? > run.exit.tmp; mv run.exit.tmp run.exit",
            ],
            cwd=project,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


@pytest.fixture(scope="session", autouse=True)
def _flow_project_build(
    request: pytest.FixtureRequest,
    _isolated_env,
    tmp_path_factory: pytest.TempPathFactory,
    worker_id: str,
) -> None:
    """Start building the flow project when the session starts, as a process of its own,
    when any selected test needs it: the workers run other tests meanwhile instead of
    waiting idle for it (tests that need it wait in ``flow_project``)."""
    if any(_needs_flow_project(item) for item in request.session.items):
        _start_flow_build(*_flow_paths(tmp_path_factory, worker_id))


@pytest.fixture(scope="session")
def flow_project(
    tmp_path_factory: pytest.TempPathFactory, worker_id: str, _flow_project_build
) -> Path:
    """A tiny project on which `nnpipe run` (the Prefect flow) has run once, end to end.

    Built once per test run, also under pytest-xdist (see ``_flow_project_build``); this
    waits for it. Tests read it or copy it; none changes it."""
    shared, project = _flow_paths(tmp_path_factory, worker_id)
    _start_flow_build(shared, project)  # when asked for by getfixturevalue only
    deadline = time.monotonic() + 1500
    while not (project / "run.exit").is_file():
        if time.monotonic() > deadline:
            pytest.fail(
                f"the flow project was not built in time:\n"
                f"{(project / 'run.log').read_text()[-4000:]}"
            )
        time.sleep(1)
    code = (project / "run.exit").read_text().strip()
    if code != "0":
        pytest.fail(
            f"nnpipe run failed ({code}) building the flow project:\n"
            f"{(project / 'run.log').read_text()[-8000:]}"
        )
    return project


@pytest.fixture
def flow_copy(flow_project: Path, tmp_path: Path) -> Path:
    """A copy of the flow's project, for tests that change its params, outputs or registry
    (its MLflow artifacts still go to the original's folder: the store names it)."""
    dest = tmp_path / "copy"
    shutil.copytree(flow_project, dest, symlinks=True)
    return dest


# The tiers, by folder: what a test may cost is where it lives (CONTRIBUTING.md, "Test").
TIERS = {
    "unit": "no network, no real data, no servers, TensorFlow trains a few steps at most",
    "integration": "real stages, flows, Prefect/MLflow/DVC servers and repos, on tiny data",
    "realdata": "reads ../shared/data or the network; skips, saying why, where absent",
}
TESTS = Path(__file__).resolve().parent


def tier_of(item: pytest.Item) -> str:
    """The tier a test belongs to: the folder under tests/ it lives in."""
    try:
        tier = Path(item.path).resolve().relative_to(TESTS).parts[0]
    except ValueError:
        tier = ""
    if tier not in TIERS:
        raise pytest.UsageError(
            f"{item.nodeid}: every test lives in one tier's folder, "
            f"{', '.join(f'tests/{t}/' for t in TIERS)}; move it into the one whose cost "
            "it has (CONTRIBUTING.md, Test)"
        )
    if item.get_closest_marker("network") and tier != "realdata":
        raise pytest.UsageError(
            f"{item.nodeid} is marked network: it belongs in tests/realdata/ (the unit and "
            "integration tiers run offline)"
        )
    return tier


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    """A unit test is watched from before its fixtures to after its teardown: the network,
    more than a few training steps or a subprocess importing TensorFlow fail it
    (tests/tier_guards.py)."""
    if item.get_closest_marker("unit"):
        tier_guards.start(item)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, object, object]:
    try:
        result = yield
    finally:
        problems = tier_guards.stop(item)
    if problems:
        pytest.fail(f"{item.nodeid} breaks the unit tier's rules: {' '.join(problems)}", False)
    return result


@pytest.hookimpl(tryfirst=True)  # before -m deselects: `-m unit` sees the tier markers
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Mark every test with its tier (:data:`TIERS`, from its folder: a new test cannot
    forget it), then set the order pytest-xdist hands out whole files in
    (``--no-loadscope-reorder`` keeps it): files that need the flow project last, since it
    builds in the background from the session's start (``_flow_project_build``) and the
    workers get through everything else meanwhile instead of waiting for it; in each part
    the longest files first (seconds from tests/durations.json, a tier's guess for a file
    it lacks), so a long file never starts last on one worker while the other idles, and
    the short ones even out the workers' ends."""
    tiers = {}
    for item in items:
        tiers[item.nodeid] = tier_of(item)
        item.add_marker(tiers[item.nodeid])
    needs = {str(item.path) for item in items if _needs_flow_project(item)}
    seconds = durations.load()

    def cost(item: pytest.Item) -> float:
        name = Path(item.path).resolve().relative_to(TESTS).as_posix()
        return seconds.get(name, durations.GUESS[tiers[item.nodeid]])

    items.sort(key=lambda item: (str(item.path) in needs, -cost(item)))  # stable
