"""The file MLflow builds the deployable pyfunc from ("models from code": the model is
defined by this code and the deploy folder, nothing is pickled). Read by MLflow when a
version is logged and loaded, never imported by nnpipe itself."""

from mlflow.models import set_model

from nnpipe.serving.pyfunc import DeployedModel

set_model(DeployedModel())
