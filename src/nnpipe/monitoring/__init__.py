"""Monitoring after deployment: the prediction log (:mod:`.prediction_log`), the drift
statistics (:mod:`.drift`) and the monitor's report (:mod:`.report`). Core: no MLflow,
Prefect or DVC here; the monitor stage (:mod:`nnpipe.stages.monitor`) wires them."""
