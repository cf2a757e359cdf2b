"""Running a domain's stages in-process on a copy of the flow project, with an
architecture's overrides, and checking what every stage left (the architecture tests)."""

from __future__ import annotations

from conftest import working_directory

from nnpipe.config import load_params
from nnpipe.domains.registry import get_domain
from nnpipe.io import read_json
from nnpipe.stages import get_stage

STEPS = ("tune", "train", "evaluate", "compress", "promote", "register")
# the reference and one TFLite conversion; pruning is in the unit tests of every
# architecture, and through this stage's worker process for the ViT (PRUNED: nnpipe's own
# layer, pruned, saved and reloaded there)
VARIANTS = "[keras_float32,tflite_dynamic]"
PRUNED = "[keras_float32,tflite_dynamic,pruned]"


def run_pipeline(project, domain: str, overrides: list[str]) -> dict:
    with working_directory(project):
        params = load_params(
            "params.yaml",
            [
                f"{domain}.tune.enabled=false",
                f"{domain}.train.epochs=1",
                f"{domain}.compress.variants={VARIANTS}",
                *overrides,
            ],
        )
        for step in STEPS:
            get_stage(step, domain).run(params)
    return params


def check_outputs(project, params, domain: str, series: str | None = None) -> dict:
    """Every variant built (an unsupported one's row and reason: tests/unit/compression);
    a version registered; the deploy folder's spec."""
    reports = project / "reports" / domain
    table = read_json(reports / "compression.json")
    rows = table["series"][series]["variants"] if series else table["variants"]
    assert set(rows) == set(get_domain(domain).section(params).compress.variants)
    for name, row in rows.items():  # every variant asked for is built and measured
        assert row["status"] == "ok", (name, row)
    registration = read_json(reports / "registration.json")
    if series:
        registration = registration["series"][series]
    assert registration["version"] is not None, registration
    deploy_dir = project / "models" / f"{domain}-deploy" / (series or "")
    return read_json(deploy_dir / "deploy.json")
