"""The deployable: a promoted deploy folder logged as an MLflow pyfunc (the model the
registry versions), with nnpipe's code inside, its signature and its requirements."""

from __future__ import annotations

import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

import nnpipe
from nnpipe.serving import pyfunc
from nnpipe.serving.predictor import load_predictor
from nnpipe.tracking.packaging import LoggedModel


def serving_requirements(keras_variant: bool) -> list[str]:
    """Pinned requirements of the deployable pyfunc: what its code imports (TensorFlow
    only when the deployed variant is the Keras model)."""
    packages = ["mlflow", "numpy", "pandas", "pillow", "scipy", "ai-edge-litert"]
    if keras_variant:
        packages += ["tensorflow", "tf-keras"]
    return [f"{pkg}=={version(pkg)}" for pkg in packages]


def deployable_signature(deploy_dir: Path, input_example: np.ndarray) -> Any:
    """The deployable's signature, from what its predictor returns for ``input_example``.

    Marked as the model's own (as MLflow marks a signature it takes from ``predict``'s
    type hints), so MLflow documents it but does not convert inputs to it: the pyfunc
    takes more than this one form (any image size, tables of bars or image bytes), and
    MLflow's tensor enforcement would refuse those."""
    output = pd.DataFrame(load_predictor(deploy_dir).predict_input(input_example))
    signature = infer_signature(input_example, output)
    signature._is_signature_from_type_hint = True
    return signature


def log_deployable(
    deploy_dir: Path,
    keras_variant: bool,
    input_example: np.ndarray,
) -> LoggedModel:
    """Log a deploy folder as an MLflow pyfunc (the model the registry versions), with
    nnpipe's code inside so it loads wherever its requirements are installed, and with a
    signature and an input example (the model version page shows both)."""
    code = Path(pyfunc.__file__).with_name("mlflow_model.py")  # models from code, no pickle
    signature = deployable_signature(deploy_dir, input_example)
    with warnings.catch_warnings():
        # predict() takes arrays and tables, so it has no type hints for MLflow to check
        warnings.filterwarnings("ignore", message="Add type hints to the `predict` method")
        info = mlflow.pyfunc.log_model(
            name="deployable",
            python_model=str(code),
            artifacts={pyfunc.ARTIFACT: str(deploy_dir.resolve())},
            code_paths=[str(Path(nnpipe.__file__).resolve().parent)],
            pip_requirements=serving_requirements(keras_variant),
            signature=signature,
            input_example=input_example,
            # a step no metric uses: MLflow copies the metrics of the model's step onto it,
            # and step 0 holds the first epoch's (this model is the deployed variant, which
            # register measures itself)
            step=-1,
        )
    return LoggedModel(info.model_uri, info.model_id)
