"""nnpipe: Keras models from notebook to production with Prefect, DVC and MLflow.

The one import-time action of the package: pruning with tensorflow-model-optimization 0.8
refuses Keras 3 models, so nnpipe runs Keras 2 (``tf-keras``), and TensorFlow chooses its
Keras from ``TF_USE_LEGACY_KERAS`` when it is *first* imported, by whichever module that is
(MLflow's and Prefect's integrations import it too). Setting it here, in the package
root, is the only place that runs before every one of them. :mod:`nnpipe.keras_env` checks
it took effect and is the only module that imports TensorFlow itself.

For the same reason TensorFlow's C++ log level is set here (its library reads it once,
when it loads): 3 keeps its not-actionable errors and warnings (``failed call to
cuInit`` without a GPU, ``use_unbounded_threadpool`` graph notes) out of every process,
a worker's flow run included; Python errors still raise, and the user's own value wins.
The few notes TensorFlow prints before its logging starts (oneDNN, "Could not find cuda
drivers") obey no variable.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
