"""What a stage writes for DVC to hash is the same bytes in any process: each check starts
a fresh interpreter (another hash seed), which imports TensorFlow, so it is not a unit
test."""

import os
import subprocess
import sys

import numpy as np

from nnpipe.domains.xray.features import write_tfrecord


def test_tfrecord_bytes_are_identical_across_processes(tmp_path):
    """What this process writes, another one (another hash seed) writes byte for byte: the
    features' DVC hash does not change between runs."""
    code = (
        "import numpy as np, sys\n"
        "from nnpipe.domains.xray.features import write_tfrecord\n"
        "imgs = np.arange(3 * 8 * 8, dtype=np.uint8).reshape(3, 8, 8)\n"
        "write_tfrecord(sys.argv[1], imgs, [0, 1, 0], ['a', 'b', 'c'])\n"
    )
    images = np.arange(3 * 8 * 8, dtype=np.uint8).reshape(3, 8, 8)
    write_tfrecord(tmp_path / "here", images, [0, 1, 0], ["a", "b", "c"])
    ours = os.environ.get("PYTHONHASHSEED", "random")  # theirs differs from it
    seed = str(int(ours) + 1) if ours.isdigit() else "random"
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "there")],
        check=True,
        env={**os.environ, "PYTHONHASHSEED": seed},
    )
    assert (tmp_path / "here").read_bytes() == (tmp_path / "there").read_bytes()
