# syntax=docker/dockerfile:1.7
# The serving image: `nnpipe serve` on the registry's champions. Slim: the `serve` extra
# only (MLflow's client, the LiteRT interpreter, FastAPI on uvicorn; no TensorFlow, Prefect
# or DVC: about a tenth of the pipeline image), non-root, with a health check.
# It serves TFLite champions; a champion promoted as Keras needs the pipeline image.
# Build from the project root:  docker build -f docker/serve.Dockerfile -t nnpipe-serve .
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/opt/venv UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m pip install --no-cache-dir "uv==0.13.9"
WORKDIR /src
# dependencies first (a layer that changes only with uv.lock), exactly as the lock pins them
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project --extra serve
COPY src ./src
RUN uv sync --frozen --no-dev --no-editable --extra serve

FROM ${PYTHON_IMAGE} AS runtime
RUN useradd --create-home --uid 10001 nnpipe
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /home/nnpipe
# the model names and defaults `nnpipe serve` reads (MLFLOW_TRACKING_URI wins over params)
COPY --chown=nnpipe:nnpipe params.yaml ./
USER nnpipe
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
# 0.0.0.0 inside the container; compose publishes the port on the host's loopback only.
# NNPIPE_API_KEY is required: without it, serve refuses a non-loopback host (compose sets it;
# --allow-no-api-key is the explicit opt-out).
ENTRYPOINT ["nnpipe", "serve", "--host", "0.0.0.0", "--port", "8000"]
CMD []
