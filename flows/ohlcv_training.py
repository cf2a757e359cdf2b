"""The ``ohlcv-training`` flow: the stock-price forecasting stages, as Prefect runs them.

Deploy it on a schedule with ``prefect deploy`` (see prefect.yaml: weekdays after the US
market closes) or ``nnpipe schedule``; run it once with ``nnpipe run --domain ohlcv``. It
wires registered stages together and does nothing else.
"""

from __future__ import annotations

from prefect import flow

from nnpipe.flow_tasks import describe_flow, run_domain


@flow(name="ohlcv-training", description=describe_flow("ohlcv"))
def ohlcv_training(params_file: str = "params.yaml", force: bool = False) -> dict:
    return run_domain("ohlcv", params_file=params_file, force=force)


if __name__ == "__main__":
    ohlcv_training()
