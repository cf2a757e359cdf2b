"""Put on PYTHONPATH by tests/tier_guards.py while a unit test runs: a Python subprocess of
the test that imports TensorFlow appends its command line to the file named by
NNPIPE_UNIT_TIER_TF_LOG, and the test fails (a fresh interpreter importing TensorFlow
costs seconds: tests/integration). Then the interpreter's own sitecustomize, if any, runs
as usual."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys

_LOG = os.environ.get("NNPIPE_UNIT_TIER_TF_LOG")


class _ReportTensorflow(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as Python would, and reports when its code runs (not when it
    is only looked up, as libraries checking for it do)."""

    def find_spec(self, name, path=None, target=None):  # type: ignore[no-untyped-def]
        if name != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module):  # type: ignore[no-untyped-def]
            with open(str(_LOG), "a", encoding="utf-8") as log:
                log.write(" ".join([sys.executable, *sys.argv])[:300] + "\n")
            run(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if _LOG:
    sys.meta_path.insert(0, _ReportTensorflow())

# the sitecustomize this one shadows (Debian's, a virtualenv's), if there is one
_here = os.path.dirname(os.path.abspath(__file__))
_path = sys.path[:]
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
del sys.modules["sitecustomize"]
try:
    import sitecustomize  # noqa: F401
except ModuleNotFoundError as error:
    if error.name != "sitecustomize":
        raise
finally:
    sys.path[:] = _path
