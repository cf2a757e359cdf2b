"""The one registry of pipeline stages, used by ``dvc.yaml`` (generated from it) and the
Prefect flows alike.

Each domain has its own pipeline of steps (``ingest``, ``featurize``, ``tune``, ``train``,
``evaluate``, ``compress``, ``promote``, ``register``); a step's code is the module
``nnpipe.stages.<domain>.<step>``, its ``dvc.yaml`` stage and its Prefect task are both
named ``<domain>-<step>`` (``dvc repro xray-train``). Each module has
``run(params, domain)``, which does the step's file I/O around core calls, and a small
``main()`` for the command line. Stages are written out per domain, not as one
``foreach``, so each stage depends on its own domain's code only: editing the OHLCV code
never re-runs the X-ray training. Nothing here imports a stage module until it is asked
for.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from nnpipe.config import DOMAINS, PARAMS_FILE, Params, load_params
from nnpipe.errors import NnpipeError, configure_logging, report_errors
from nnpipe.prefect_env import prefect_defaults
from nnpipe.project_lock import clean_after_killed_runs, hold_project

log = logging.getLogger(__name__)


def raw_dir(domain: str) -> str:
    """Path templates as DVC writes them; ``nnpipe.layout`` resolves the same paths in
    Python, and a test checks DVC resolves these to the same places."""
    return f"${{paths.data}}/{domain}/raw"


def features_dir(domain: str) -> str:
    return f"${{paths.data}}/{domain}/features"


def model_dir(domain: str) -> str:
    return f"${{paths.models}}/{domain}"


def reports_dir(domain: str) -> str:
    return f"${{paths.reports}}/{domain}"


def variants_dir(domain: str) -> str:
    return f"${{paths.models}}/{domain}-variants"


@dataclass(frozen=True)
class Output:
    """A stage's output. Small reports (``cache=False``) live in git, so ``dvc exp show``,
    ``dvc metrics diff`` and ``dvc plots diff`` can read them at every commit and
    experiment; large ones (models, data, figures) live in DVC's cache, from which
    ``dvc exp apply`` and ``dvc checkout`` bring them back. Plots are outputs like any
    other: how they are drawn is declared once, in ``dvc.yaml``'s top-level ``plots``."""

    path: str
    kind: str = "out"  # out | metric (numeric headline values, shown by `dvc metrics`)
    cache: bool = True


@dataclass(frozen=True)
class Stage:
    domain: str
    step: str
    description: str
    params: tuple[str, ...]  # keys under the domain's section; "seed" etc. are global
    deps: tuple[str, ...]  # data this stage reads (code deps are derived from its imports)
    outs: tuple[Output, ...]
    touches_network: bool = False  # retried by the Prefect flow
    # the module has ``source_changed(params, domain)``: inputs DVC cannot see (a folder
    # or URL named by a param) that make the stage stale even when ``dvc status`` says current
    watches_source: bool = False

    @property
    def name(self) -> str:
        """The ``dvc.yaml`` stage and Prefect task name."""
        return f"{self.domain}-{self.step}"

    @property
    def module_name(self) -> str:
        return f"nnpipe.stages.{self.domain}.{self.step}"

    def module(self) -> ModuleType:
        return importlib.import_module(self.module_name)

    def run(self, params: Params) -> dict:
        return self.module().run(params, self.domain)

    def source_changed(self, params: Params) -> bool:
        return self.watches_source and self.module().source_changed(params, self.domain)


def hyperparameters_file(domain: str) -> str:
    return f"${{paths.models}}/{domain}-hyperparameters.json"


def tune_stage(domain: str) -> Stage:
    """Both domains tune alike: keras-tuner's search, trials here or on Dask."""
    reports = reports_dir(domain)
    return Stage(
        domain,
        "tune",
        "search hyper-parameters; train applies the best",
        params=("tune", "train", "seed") + (("augment",) if domain == "xray" else ()),
        deps=(features_dir(domain),),
        outs=(
            Output(hyperparameters_file(domain)),
            Output(f"{reports}/tuning.json", cache=False),
            Output(f"{reports}/tuning.csv", cache=False),
        ),
    )


def compress_stage(domain: str, deps: tuple[str, ...]) -> Stage:
    """Both domains compress alike: TFLite variants and pruning, measured in child processes."""
    reports = reports_dir(domain)
    return Stage(
        domain,
        "compress",
        "TFLite and pruned variants: size, metric, latency, parity",
        params=("compress", "seed"),
        deps=deps,
        outs=(
            Output(variants_dir(domain)),
            Output(f"{reports}/compression.json", cache=False),
            Output(f"{reports}/compression.md", cache=False),
        ),
    )


def deploy_dir(domain: str) -> str:
    return f"${{paths.models}}/{domain}-deploy"


def promote_stage(domain: str, params: tuple[str, ...]) -> Stage:
    """Both domains promote alike: a rule in params picks the variant to deploy;
    ``params`` are the sections its preprocessing settings come from."""
    reports = reports_dir(domain)
    return Stage(
        domain,
        "promote",
        "choose the variant to deploy by the rule in params",
        params=("promote", *params),
        deps=(
            variants_dir(domain),
            f"{reports}/compression.json",
            f"{model_dir(domain)}",
            f"{features_dir(domain)}",
        ),
        outs=(Output(deploy_dir(domain)), Output(f"{reports}/promotion.json", cache=False)),
    )


def evaluate_outputs(domain: str) -> tuple[Output, ...]:
    """The headline numbers (``metrics.json``, what ``dvc metrics`` compares), every number
    of the evaluation (``evaluation.json``), the plot data in git and the figures (PNG)
    in the cache."""
    reports = reports_dir(domain)
    return (
        Output(f"{reports}/metrics.json", "metric", cache=False),
        Output(f"{reports}/evaluation.json", cache=False),
        Output(f"{reports}/plots", cache=False),
        Output(f"{reports}/figures"),
    )


def register_outputs(domain: str) -> tuple[Output, ...]:
    """The registration record, and the gate's verdict as numbers (``gate.json``)."""
    reports = reports_dir(domain)
    return (
        Output(f"{reports}/registration.json", cache=False),
        Output(f"{reports}/gate.json", "metric", cache=False),
    )


def _xray_stages() -> tuple[Stage, ...]:
    d = "xray"
    raw, feats, model, reports = raw_dir(d), features_dir(d), model_dir(d), reports_dir(d)
    return (
        Stage(
            d,
            "ingest",
            "read the configured source into a de-duplicated raw dataset",
            params=("classes", "ingest", "seed"),
            deps=(),
            outs=(Output(raw),),
            touches_network=True,
            watches_source=True,
        ),
        Stage(
            d,
            "featurize",
            "split, resize and write TFRecords",
            params=("classes", "featurize", "seed"),
            deps=(raw,),
            outs=(Output(feats),),
        ),
        tune_stage(d),
        Stage(
            d,
            "train",
            "fit the CNN, log it to MLflow",
            params=("train", "augment", "seed"),
            deps=(feats, hyperparameters_file(d)),
            outs=(Output(model), Output(f"{reports}/history.csv", cache=False)),
        ),
        Stage(
            d,
            "evaluate",
            "test metrics with a threshold chosen on validation; plots",
            params=("evaluate",),
            deps=(feats, model),
            outs=evaluate_outputs(d),
        ),
        compress_stage(d, (feats, model, f"{reports}/evaluation.json")),
        promote_stage(d, ("classes", "ingest", "featurize", "evaluate")),
        Stage(
            d,
            "register",
            "register the deployable model, set challenger, gate champion",
            params=("register",),
            deps=(model, f"{reports}/evaluation.json", feats, deploy_dir(d)),
            outs=register_outputs(d),
            touches_network=True,
        ),
    )


def _ohlcv_stages() -> tuple[Stage, ...]:
    d = "ohlcv"
    raw, feats, model, reports = raw_dir(d), features_dir(d), model_dir(d), reports_dir(d)
    return (
        Stage(
            d,
            "ingest",
            "read each price series from its source and validate it",
            params=("ingest", "validation", "seed"),
            deps=(),
            outs=(Output(raw),),
            touches_network=True,
            watches_source=True,
        ),
        Stage(
            d,
            "featurize",
            "derived features, chronological splits with gaps, windows",
            params=("featurize",),
            deps=(raw,),
            outs=(Output(feats),),
        ),
        tune_stage(d),
        Stage(
            d,
            "train",
            "fit the recurrent forecaster per series, log it to MLflow",
            params=("train", "seed"),
            deps=(feats, hyperparameters_file(d)),
            outs=(Output(model), Output(f"{reports}/history.csv", cache=False)),
        ),
        Stage(
            d,
            "evaluate",
            "test metrics in price units against baselines; walk-forward",
            params=("evaluate", "train", "seed"),
            deps=(feats, model, hyperparameters_file(d)),
            outs=evaluate_outputs(d),
        ),
        compress_stage(d, (feats, model)),
        promote_stage(d, ("featurize",)),
        Stage(
            d,
            "register",
            "register each series' deployable model, set challenger, gate champion",
            params=("register",),
            deps=(model, f"{reports}/evaluation.json", feats, deploy_dir(d)),
            outs=register_outputs(d),
            touches_network=True,
        ),
    )


_BUILDERS = {"xray": _xray_stages, "ohlcv": _ohlcv_stages}
PIPELINES: dict[str, tuple[Stage, ...]] = {domain: _BUILDERS[domain]() for domain in DOMAINS}
STAGES: dict[str, Stage] = {s.name: s for stages in PIPELINES.values() for s in stages}
STEPS: tuple[str, ...] = tuple(dict.fromkeys(s.step for s in STAGES.values()))


def get_stage(step: str, domain: str) -> Stage:
    """The stage of one step in one domain, or a clear error naming what exists."""
    for stage in PIPELINES.get(domain, ()):
        if stage.step == step:
            return stage
    known = ", ".join(s.step for s in PIPELINES.get(domain, ()))
    raise NnpipeError(f"domain {domain!r} has no stage {step!r}; its stages: {known}")


class MissingInputError(NnpipeError, FileNotFoundError):
    """A stage's input is absent: the stage before it has not run (or failed)."""


def require(path: Path, producer: str, domain: str) -> Path:
    """Return ``path`` if it exists, else say which stage makes it and how to run it."""
    if not path.exists():
        raise MissingInputError(
            f"{path} does not exist; it is made by the {producer!r} stage. Run "
            f"`nnpipe stage {producer} --domain {domain}` or `dvc repro {domain}-{producer}`."
        )
    return path


@contextlib.contextmanager
def tracking_errors_reported() -> Iterator[None]:
    """A tracking server that does not answer is an outage, not a bug: its one plain
    line (naming the server and what to do), not MLflow's traceback."""
    try:
        yield
    except Exception as exc:
        if "mlflow" in sys.modules:  # only a stage that tracks can meet one
            from nnpipe.tracking_http import unavailable_error

            found = unavailable_error(exc)
            if found is not None:
                raise found from None
        raise


def cli_main(module_name: str, run: Callable[[Params, str], dict], argv: list[str] | None) -> int:
    """The ``main()`` of every stage module: parse --params/-S, run, report errors plainly.

    Modules pass ``__spec__.name``, their dotted name also under ``python -m``."""
    stage = next(s for s in STAGES.values() if s.module_name == module_name)
    parser = argparse.ArgumentParser(
        prog=f"nnpipe stage {stage.step} --domain {stage.domain}", description=stage.description
    )
    parser.add_argument("--domain", default=stage.domain, choices=[stage.domain])
    parser.add_argument("--params", default=PARAMS_FILE)
    parser.add_argument(
        "-S", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE"
    )
    args = parser.parse_args(argv)
    configure_logging()
    prefect_defaults()  # a stage may run a flow of its own (tuning trials on Dask)
    with report_errors(), hold_project(f"stage {stage.name}"):
        params = load_params(args.params, args.overrides)
        clean_after_killed_runs([params.paths.data, params.paths.models, params.paths.reports])
        log.info("stage %s", stage.name)
        with tracking_errors_reported():
            run(params, stage.domain)
    return 0
