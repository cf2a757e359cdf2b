"""The stage declarations and path templates every domain's pipeline shares.

Paths are templates as DVC writes them (``${paths.data}/xray/raw``); ``nnpipe.layout``
resolves the same paths in Python, and a test checks DVC resolves these to the same places.
"""

from __future__ import annotations

from nnpipe.config.search_space import UNSEARCHABLE
from nnpipe.domains.contract import Output, Stage


def raw_dir(domain: str) -> str:
    return f"${{paths.data}}/{domain}/raw"


def features_dir(domain: str) -> str:
    return f"${{paths.data}}/{domain}/features"


def model_dir(domain: str) -> str:
    return f"${{paths.models}}/{domain}"


def reports_dir(domain: str) -> str:
    return f"${{paths.reports}}/{domain}"


def variants_dir(domain: str) -> str:
    return f"${{paths.models}}/{domain}-variants"


def hyperparameters_file(domain: str) -> str:
    return f"${{paths.models}}/{domain}-hyperparameters.json"


def tune_stage(domain: str, params: tuple[str, ...] = ()) -> Stage:
    """Every domain tunes alike: keras-tuner's search, trials here or on Dask; ``params``:
    the sections, besides ``tune`` and ``train``, its trials read."""
    reports = reports_dir(domain)
    return Stage(
        domain,
        "tune",
        "search hyper-parameters; train applies the best",
        params=("tune", "train", "seed", *params),
        deps=(features_dir(domain),),
        outs=(
            Output(hyperparameters_file(domain)),
            Output(f"{reports}/tuning.json", cache=False),
            Output(f"{reports}/tuning.csv", cache=False),
        ),
        generic=True,
        # a trial's epochs are the tune section's (or Hyperband's), never train's: `dvc exp
        # run -S xray.train.epochs=20` retrains without searching again
        unread=tuple(f"train.{key}" for key in UNSEARCHABLE),
    )


def compress_stage(domain: str, deps: tuple[str, ...]) -> Stage:
    """Every domain compresses alike: TFLite variants and pruning, measured in child processes."""
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
        generic=True,
    )


def deploy_dir(domain: str) -> str:
    return f"${{paths.models}}/{domain}-deploy"


def promote_stage(domain: str, params: tuple[str, ...], deps: tuple[str, ...] = ()) -> Stage:
    """Every domain promotes alike: a rule in params picks the variant to deploy;
    ``params`` are the sections its preprocessing settings come from, ``deps`` what else
    its monitoring reference reads. The reference is a seeded sample of
    ``monitor.reference_rows`` training rows."""
    reports = reports_dir(domain)
    return Stage(
        domain,
        "promote",
        "choose the variant to deploy by the rule in params; describe its training data "
        "for the monitor",
        params=("seed", "promote", "monitor.reference_rows", *params),
        deps=(
            variants_dir(domain),
            f"{reports}/compression.json",
            f"{model_dir(domain)}",
            f"{features_dir(domain)}",
            *deps,
        ),
        outs=(Output(deploy_dir(domain)), Output(f"{reports}/promotion.json", cache=False)),
        generic=True,
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


def register_stage(domain: str, description: str) -> Stage:
    """Every domain registers alike: its deployable models (with their evaluation and the
    features the gate re-scores the champion on), the aliases, the champion gate."""
    reports = reports_dir(domain)
    return Stage(
        domain,
        "register",
        description,
        params=("register",),
        deps=(
            model_dir(domain),
            f"{reports}/evaluation.json",
            features_dir(domain),
            deploy_dir(domain),
        ),
        outs=register_outputs(domain),
        touches_network=True,
    )
