"""Bad input gets a clear error naming the problem, and leaves no output a later stage trusts."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import make_project, working_directory
from PIL import Image

from nnpipe.config import load_params
from nnpipe.domains.xray.dataset import SplitError
from nnpipe.domains.xray.sources import DataSourceError
from nnpipe.domains.xray.stages import featurize, ingest
from nnpipe.stages import MissingInputError

pytestmark = pytest.mark.integration


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "project")


def folder_params(path, **extra):
    overrides = ["xray.ingest.source=folder", f"xray.ingest.folder.path={path}"]
    return overrides + [f"{k}={v}" for k, v in extra.items()]


def images(folder, n, value0=0):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        arr = np.random.default_rng(value0 + i).integers(0, 255, (30, 30), dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"{i}.png")


def test_unknown_param_on_the_command_line_exits_2_naming_the_key(project):
    done = subprocess.run(
        [sys.executable, "-m", "nnpipe", "params", "show", "-S", "xray.train.epocs=3"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "xray.train.epocs: unknown key" in done.stderr
    assert "Traceback" not in done.stderr


def test_empty_folder_fails_and_writes_nothing(project, tmp_path):
    (tmp_path / "empty").mkdir()
    with working_directory(project), pytest.raises(DataSourceError, match="no class sub-folders"):
        ingest.run(load_params("params.yaml", folder_params(tmp_path / "empty")), "xray")
    assert not (project / "data").exists()


def test_one_class_only_is_refused(project, tmp_path):
    images(tmp_path / "src" / "NORMAL", 5)
    wanted = r"no image of class\(es\) \['pneumonia'\]"
    with working_directory(project), pytest.raises(DataSourceError, match=wanted):
        ingest.run(load_params("params.yaml", folder_params(tmp_path / "src")), "xray")


def test_failed_featurize_keeps_the_previous_output(project, tmp_path):
    with working_directory(project):
        params = load_params("params.yaml")
        ingest.run(params, "xray")
        featurize.run(params, "xray")
        before = sorted(p.name for p in (project / "data/xray/features").iterdir())
        images(tmp_path / "src" / "NORMAL", 10)
        images(tmp_path / "src" / "PNEUMONIA", 2, value0=100)
        small = load_params("params.yaml", folder_params(tmp_path / "src"))
        ingest.run(small, "xray")
        with pytest.raises(SplitError, match="'pneumonia' has 2 patient/image group"):
            featurize.run(small, "xray")
    assert sorted(p.name for p in (project / "data/xray/features").iterdir()) == before
    leftovers = [p.name for p in (project / "data/xray").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_too_many_unreadable_images_fail_the_ingest(project, tmp_path):
    images(tmp_path / "src" / "NORMAL", 6)
    images(tmp_path / "src" / "PNEUMONIA", 6, value0=50)
    for i in range(3):
        (tmp_path / "src" / "PNEUMONIA" / f"bad{i}.jpg").write_bytes(b"\xff\xd8\xff truncated")
    with working_directory(project), pytest.raises(DataSourceError, match="unreadable"):
        ingest.run(load_params("params.yaml", folder_params(tmp_path / "src")), "xray")
    assert not (project / "data").exists()


def test_npz_with_missing_keys_is_named(project, tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, train_images=np.zeros((2, 28, 28), np.uint8))
    with working_directory(project), pytest.raises(DataSourceError, match="lacks key"):
        ingest.run(
            load_params(
                "params.yaml", ["xray.ingest.source=medmnist", f"xray.ingest.medmnist.path={bad}"]
            ),
            "xray",
        )


def test_stage_before_its_input_says_which_stage_to_run(project):
    with (
        working_directory(project),
        pytest.raises(MissingInputError, match="made by the 'ingest' stage"),
    ):
        featurize.run(load_params("params.yaml"), "xray")


def test_nnpipe_run_on_bad_input_exits_2_with_the_message_and_no_traceback(project, tmp_path):
    from conftest import nnpipe

    (tmp_path / "empty").mkdir()
    with working_directory(project):
        from nnpipe.config import write_overrides

        write_overrides("params.yaml", folder_params(tmp_path / "empty"))
    # the X-ray flow alone: beside it the OHLCV one would run on (test_side_by_side's case)
    done = nnpipe(project, "run", "--domain", "xray", check=False)
    assert done.returncode == 2
    assert "no class sub-folders" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (project / "data").exists()
