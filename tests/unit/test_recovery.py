"""What lets a run recover from the one before it: strict params, staging names that say
whose they are, and the project lock (real processes, no mocks)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from nnpipe.config import ParamsError, load_params, read_params_file
from nnpipe.io import atomic_directory, remove_stale_staging, staging_prefix
from nnpipe.liveness import current_owner, parse_owner, pid_is_alive
from nnpipe.project_lock import ProjectBusy, hold_project, lock_path

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize(
    "override",
    [
        "xray.train.epochs=true",
        "seed=false",
        "xray.train.learning_rate=true",
        "ohlcv.train.epochs=true",
        "xray.train.filters=[true,8]",
    ],
)
def test_a_boolean_is_not_a_number(override):
    with pytest.raises(ParamsError) as err:
        load_params(PARAMS, [override])
    key = override.split("=")[0]
    assert f"{key}: " in str(err.value) and "boolean" in str(err.value)


def test_switches_still_take_booleans():
    params = load_params(
        PARAMS, ["xray.train.stream_from_disk=true", "xray.train.batch_norm=false"]
    )
    assert params.xray.train.stream_from_disk is True and params.xray.train.batch_norm is False


def test_an_empty_params_file_is_one_clear_error(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("")
    with pytest.raises(ParamsError, match="is empty"):
        read_params_file(path)
    path.write_text(yaml.safe_dump({"seed": 1}))
    assert read_params_file(path) == {"seed": 1}


def test_owner_tokens_round_trip_and_tell_the_dead_from_the_living():
    me = current_owner()
    assert parse_owner(me.token()) == me and me.is_alive()
    assert not pid_is_alive(dead_pid())
    # the same pid with another start time is another (reused) process
    assert not pid_is_alive(os.getpid(), (me.start or 0) + 1)
    assert parse_owner("not an owner") is None


def test_stale_staging_of_dead_writers_is_removed_and_live_ones_are_kept(tmp_path):
    models = tmp_path / "models"
    (models / "xray").mkdir(parents=True)
    dead = dead_pid()
    stale_dir = models / f".xray-model.{dead}-1.abcd1234.tmp"
    stale_file = models / "xray" / f".metrics.json.{dead}-.k2j3h4g5.tmp"
    stale_old = models / f".xray-model.old-{dead}-1"
    live = models / f"{staging_prefix(models / 'xray-deploy')}zz99yy88.tmp"
    keep = [models / "xray" / "model.keras", models / ".gitignore", live]
    for path in (stale_dir, stale_old, live):
        path.mkdir()
    for path in (stale_file, keep[0], keep[1]):
        path.write_text("x")
    removed = remove_stale_staging([models, tmp_path / "missing"])
    assert sorted(removed) == sorted([stale_dir, stale_file, stale_old])
    assert all(p.exists() for p in keep) and not any(p.exists() for p in removed)


def test_a_staging_folder_names_its_writer(tmp_path):
    with atomic_directory(tmp_path / "out") as tmp:
        assert tmp.name.startswith(f".out.{os.getpid()}-")
        assert remove_stale_staging([tmp_path]) == []  # ours, and we are alive
    assert (tmp_path / "out").is_dir()


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from nnpipe.project_lock import hold_project
    with hold_project("test", Path(sys.argv[1])):
        print("held", flush=True)
        time.sleep(600)
""")


def test_the_project_lock_is_one_holder_at_a_time_and_dies_with_it(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ProjectBusy) as err:
            with hold_project("a second run", tmp_path):
                pass
        assert f"another run (pid {holder.pid}, started at " in str(err.value)
        holder.kill()  # kill -9: no cleanup code runs, the kernel releases the lock
        holder.wait()
        with hold_project("the next run", tmp_path) as root, hold_project("again", root):
            assert root == tmp_path  # re-entrant in the process that holds it
        assert (lock_path(tmp_path).parent / ".gitignore").read_text() == "*\n"
    finally:
        holder.kill()
        holder.wait()


TRY_LOCK = textwrap.dedent("""
    import sys
    from pathlib import Path
    from nnpipe.project_lock import ProjectBusy, hold_project
    try:
        with hold_project("a try", Path(sys.argv[1])):
            print("held", flush=True)
            sys.stdin.readline()  # hold it until told to end
    except ProjectBusy:
        print("busy", flush=True)
""")


def try_lock(root: Path, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", TRY_LOCK, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        **popen,
    )


def test_a_handed_lock_is_the_holders_and_outlives_it(tmp_path):
    """`nnpipe run`'s flows side by side: each child holds the parent's lock, and the
    project stays locked while any of them runs, whoever ends first."""
    from nnpipe.project_lock import handed_lock

    with hold_project("the parent", tmp_path):
        fd, env = handed_lock(tmp_path)
        child = try_lock(tmp_path, env={**os.environ, **env}, pass_fds=(fd,))
        assert child.stdout.readline().strip() == "held"
        # the variable without the open lock itself is no pass
        stranger = try_lock(tmp_path, env={**os.environ, **env})
        assert stranger.communicate("\n")[0].strip() == "busy"
    try:  # the parent let go; its child still holds the project
        assert try_lock(tmp_path).communicate("\n")[0].strip() == "busy"
    finally:
        child.communicate("\n")
    assert try_lock(tmp_path).communicate("\n")[0].strip() == "held"


def test_handing_a_lock_not_held_is_a_bug_said_so(tmp_path):
    from nnpipe.project_lock import handed_lock

    with pytest.raises(RuntimeError, match="not held by this process"):
        handed_lock(tmp_path)
