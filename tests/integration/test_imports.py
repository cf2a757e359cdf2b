"""What importing nnpipe really does, in fresh interpreters (each imports TensorFlow, so
they are not unit tests): the package root picks Keras 2 before anything imports
TensorFlow, and the code dependencies ``dvc.yaml`` declares for a stage cover every
nnpipe module the stage really loads."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nnpipe.dvc.pipeline_file import code_dependencies

ROOT = Path(__file__).resolve().parents[2]


def test_legacy_keras_is_chosen_by_the_package_root_before_any_tensorflow_import():
    code = (
        "import os; os.environ.pop('TF_USE_LEGACY_KERAS', None)\n"
        "import nnpipe\n"  # the package root alone: nnpipe.keras_env is not imported yet
        "import tensorflow as tf\n"
        "import tf_keras\n"
        "assert tf.keras.Model is tf_keras.Model, 'tf.keras is Keras 3'\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


@pytest.mark.parametrize(
    "stage", ["xray.ingest", "xray.featurize", "xray.tune", "ohlcv.ingest", "ohlcv.featurize"]
)
def test_declared_code_deps_cover_what_a_stage_really_imports(tmp_path, stage):
    domain, step = stage.split(".")
    module = f"nnpipe.domains.{domain}.stages.{step}"
    code = (
        f"import sys, {module}\n"
        "print('\\n'.join(m.__file__ for n, m in sys.modules.items()\n"
        "                 if n.startswith('nnpipe') and getattr(m, '__file__', None)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, check=True, capture_output=True, text=True
    ).stdout.split()
    loaded = {Path(p).resolve().relative_to(ROOT).as_posix() for p in out}
    assert loaded <= set(code_dependencies(module))
