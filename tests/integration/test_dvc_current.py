"""The flow's "what is current" check (``nnpipe.dvc.repo.current_stages``) agrees with
``dvc status`` stage by stage, on a real DVC repository: a changed param, a changed
dependency, a deleted output and a stage that never ran are stale; the rest are current.
The working directory is not the repository (DVC keys its status by paths relative to
it, which once made every stage look current)."""

import subprocess
import sys
from pathlib import Path

from nnpipe.dvc.repo import current_stages

DVC_YAML = """\
stages:
  first:
    cmd: python -c "open('a.txt','w').write(open('in.txt').read())"
    deps: [in.txt]
    outs: [a.txt]
  second:
    cmd: python -c "open('b.txt','w').write(open('a.txt').read() * 2)"
    deps: [a.txt]
    params: [size]
    outs: [b.txt]
  third:
    cmd: python -c "open('c.txt','w').write('c')"
    outs: [c.txt]
  never:
    cmd: python -c "open('d.txt','w').write('d')"
    outs: [d.txt]
"""
STAGES = ["first", "second", "third", "never"]


def dvc(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_current_stages_is_dvc_status_per_stage(tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    tmp_path = tmp_path / "project"
    tmp_path.mkdir()
    monkeypatch.chdir(elsewhere)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    dvc("init", "-q", cwd=tmp_path)
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    (tmp_path / "params.yaml").write_text("size: 1\n")
    (tmp_path / "in.txt").write_text("x")
    for stage in ("first", "second", "third"):
        dvc("repro", "-s", stage, cwd=tmp_path)
    assert current_stages(STAGES, tmp_path) == {"first", "second", "third"}  # never ran

    (tmp_path / "params.yaml").write_text("size: 2\n")  # second's param
    assert current_stages(STAGES, tmp_path) == {"first", "third"}
    (tmp_path / "in.txt").write_text("y")  # first's dependency
    (tmp_path / "c.txt").unlink()  # third's output
    assert current_stages(STAGES, tmp_path) == set()
    # each agrees with `dvc status <stage>` on its own
    for stage in STAGES:
        assert dvc("status", stage, cwd=tmp_path).strip() != "Data and pipelines are up to date."
