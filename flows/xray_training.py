"""The ``xray-training`` flow: the chest X-ray stages, as Prefect runs them.

Deploy it on a schedule with ``prefect deploy`` (see prefect.yaml) or ``nnpipe schedule``;
run it once with ``nnpipe run``. It wires registered stages together and does nothing else.
"""

from __future__ import annotations

from prefect import flow

from nnpipe.flow_tasks import describe_flow, run_domain


@flow(name="xray-training", description=describe_flow("xray"))
def xray_training(params_file: str = "params.yaml", force: bool = False) -> dict:
    return run_domain("xray", params_file=params_file, force=force)


if __name__ == "__main__":
    xray_training()
