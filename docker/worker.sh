#!/bin/sh
# The stack's Prefect worker: deploys prefect.yaml's flows (with their schedules) to the
# Prefect server, points DVC at the stack's remote, then runs the flow runs the server
# hands it. Compose's `worker` service runs it in the pipeline image, with the project
# checkout (git + DVC) mounted at NNPIPE_PROJECT_DIR; tests/integration/test_stack.py runs
# it as a process. Extra arguments go to `prefect worker start`.
set -eu
: "${PREFECT_API_URL:?set PREFECT_API_URL to the Prefect server API, e.g. http://prefect-server:4200/api}"
: "${MLFLOW_TRACKING_URI:?set MLFLOW_TRACKING_URI to the MLflow server, e.g. http://mlflow:5000}"
: "${NNPIPE_PROJECT_DIR:?set NNPIPE_PROJECT_DIR to the project checkout}"
cd "$NNPIPE_PROJECT_DIR"
pool="${NNPIPE_WORK_POOL:-nnpipe-process}"

prefect work-pool inspect "$pool" >/dev/null 2>&1 \
  || prefect work-pool create "$pool" --type process
# flow runs share the checkout's outputs, dvc.lock and the registry: one at a time
prefect work-pool set-concurrency-limit "$pool" 1 >/dev/null

if [ -n "${NNPIPE_DVC_REMOTE:-}" ]; then
  # --global: the worker's own DVC config (DVC_GLOBAL_CONFIG_DIR), not the checkout's,
  # which the host shares and where the stack's endpoint name means nothing;
  # credentials come from AWS_* in the environment
  dvc remote add --global --force --default stack "$NNPIPE_DVC_REMOTE"
  if [ -n "${AWS_ENDPOINT_URL:-}" ]; then
    dvc remote modify --global stack endpointurl "$AWS_ENDPOINT_URL"
  fi
fi

prefect --no-prompt deploy --all
exec prefect worker start --pool "$pool" "$@"
