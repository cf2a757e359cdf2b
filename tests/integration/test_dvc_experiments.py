"""Comparing and reproducing with DVC the way DVC's own docs show it, on a real repo: a
finished run committed as the baseline, then `dvc exp run -S` on one domain, then
`dvc exp show`, `dvc exp diff`, `dvc metrics diff`, `dvc plots diff` and `dvc exp apply`."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from browser import chromium_page
from conftest import git

from nnpipe.io import read_json

pytestmark = pytest.mark.integration


def dvc(project: Path, *args: str, timeout: float = 1200) -> str:
    done = subprocess.run(
        ["dvc", *args], cwd=project, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, (
        f"dvc {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


def commit_the_run(project: Path) -> None:
    """What the README tells the user to do after `make run`."""
    git(project, "add", "dvc.lock", "params.yaml", "reports")
    git(project, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "pipeline run")


def render_offline(page_file: Path, screenshot: Path) -> int:
    """Open DVC's plots page in Chromium from disk: how many Vega charts drew (an SVG or
    canvas each), with no request leaving the page's folder."""
    with chromium_page(
        allowed=(page_file.parent.as_uri(),), timeout_ms=60_000, viewport=(1300, 1000)
    ) as page:
        page.goto(page_file.as_uri())
        page.wait_for_function(
            "document.querySelectorAll('.vega-embed').length > 0 && "
            "[...document.querySelectorAll('.vega-embed')].every("
            "e => e.querySelector('svg, canvas'))"
        )
        page.screenshot(path=str(screenshot), full_page=True)
        assert not page.external, page.external
        return page.locator(".vega-embed").count()


def test_experiment_on_one_domain_is_shown_diffed_plotted_and_applied(flow_copy, tmp_path):
    project = flow_copy
    commit_the_run(project)
    tracked = subprocess.run(
        ["git", "ls-files", "reports"], cwd=project, check=True, capture_output=True, text=True
    ).stdout.split()
    assert "reports/xray/metrics.json" in tracked and "reports/ohlcv/gate.json" in tracked
    assert not any("/figures/" in path for path in tracked)  # PNGs: in DVC's cache
    baseline = read_json(project / "reports/xray/metrics.json")
    baseline_model = (project / "models/xray/model.keras").read_bytes()
    baseline_roc_png = (project / "reports/xray/figures/roc.png").read_bytes()

    out = dvc(
        project,
        "exp",
        "run",
        "-n",
        "fewer-epochs",
        "-S",
        "xray.train.epochs=2",
        "-S",
        "xray.compress.variants=[keras_float32]",
    )
    assert "Running stage 'xray-train'" in out
    # a trial's epochs are tune's: more or fewer training epochs do not search again
    assert "Running stage 'xray-tune'" not in out
    assert "Running stage 'ohlcv" not in out  # scoped to the domain whose params changed
    experiment = read_json(project / "reports/xray/metrics.json")

    # dvc exp show: the baseline and the experiment, each with its numbers
    shown = json.loads(dvc(project, "exp", "show", "--json"))
    rows = {}
    for commit in shown:
        rows[commit["name"] or commit["rev"]] = commit
        for exp in commit.get("experiments") or []:
            for revision in exp["revs"]:
                rows[revision["name"]] = revision
    assert "fewer-epochs" in rows

    def auc(row: dict) -> float:
        return row["data"]["metrics"]["reports/xray/metrics.json"]["data"]["test"]["roc_auc"]

    workspace_or_head = [r for name, r in rows.items() if name != "fewer-epochs"]
    assert any(auc(r) == pytest.approx(baseline["test"]["roc_auc"]) for r in workspace_or_head)
    assert auc(rows["fewer-epochs"]) == pytest.approx(experiment["test"]["roc_auc"])
    assert (
        rows["fewer-epochs"]["data"]["params"]["params.yaml"]["data"]["xray"]["train"]["epochs"]
        == 2
    )

    # dvc exp diff and dvc metrics diff: both sides of the headline metrics
    diff = json.loads(dvc(project, "exp", "diff", "HEAD", "fewer-epochs", "--json"))
    xray = diff["metrics"]["reports/xray/metrics.json"]
    assert xray["test.roc_auc"]["old"] == pytest.approx(baseline["test"]["roc_auc"])
    assert xray["test.roc_auc"]["new"] == pytest.approx(experiment["test"]["roc_auc"])
    assert diff["params"]["params.yaml"]["xray.train.epochs"]["new"] == 2
    metrics_diff = json.loads(dvc(project, "metrics", "diff", "--all", "--json"))  # HEAD vs ws
    headline = metrics_diff["reports/xray/metrics.json"]["test.accuracy"]
    assert headline["old"] == pytest.approx(baseline["test"]["accuracy"])
    assert headline["new"] == pytest.approx(experiment["test"]["accuracy"])

    # dvc plots diff: each plot once, both revisions, a page that needs no network
    out_dir = tmp_path / "plots"
    dvc(project, "plots", "diff", "HEAD", "fewer-epochs", "-o", str(out_dir))
    page = (out_dir / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"""<script[^>]+src=["']?https?:""", page)  # no CDN
    assert "vegaEmbed" in page and "fewer-epochs" in page
    rendered = render_offline(out_dir / "index.html", tmp_path / "plots-diff.png")
    specs = json.loads(dvc(project, "plots", "diff", "HEAD", "fewer-epochs", "--json"))
    ids = [plot_id for plot_id in specs["data"]]
    assert len(ids) == len(set(ids))
    roc = next(key for key in ids if key.endswith("xray/plots/roc.json"))
    revisions = {point["rev"] for point in specs["data"][roc][0]["content"]["data"]["values"]}
    assert revisions == {"HEAD", "fewer-epochs"}
    assert sum(key.endswith("xray/plots/roc.json") for key in ids) == 1
    vega_plots = [key for key in ids if not key.endswith(".png")]
    assert rendered == len(vega_plots), (rendered, vega_plots)

    # back to the baseline, then dvc exp apply: the experiment's reports and model return
    git(project, "checkout", "--", ".")
    dvc(project, "checkout")
    assert read_json(project / "reports/xray/metrics.json") == baseline
    assert (project / "models/xray/model.keras").read_bytes() == baseline_model
    assert (project / "reports/xray/figures/roc.png").read_bytes() == baseline_roc_png
    dvc(project, "exp", "apply", "fewer-epochs")
    assert read_json(project / "reports/xray/metrics.json") == experiment
    assert (project / "models/xray/model.keras").read_bytes() != baseline_model
    assert (project / "reports/xray/figures/roc.png").read_bytes() != baseline_roc_png
