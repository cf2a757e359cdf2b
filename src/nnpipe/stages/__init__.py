"""The one registry of pipeline stages, used by ``dvc.yaml`` (generated from it) and the
Prefect flows alike.

A stage's name is its module's name (``nnpipe.stages.<name>``), its ``dvc.yaml`` stage name
(``<name>@<domain>``) and its Prefect task name. Each module has ``run(params, domain)``,
which does the step's file I/O around core calls, and a small ``main()`` for the command
line. Nothing here imports a stage module until it is asked for.
"""

from __future__ import annotations

import argparse
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from nnpipe.config import DOMAINS, PARAMS_FILE, Params, load_params
from nnpipe.errors import NnpipeError, configure_logging, report_errors

log = logging.getLogger(__name__)

# Templates as DVC writes them; ``${item}`` is the domain. ``nnpipe.layout`` resolves the
# same paths in Python, and a test checks DVC resolves these to the same places.
RAW = "${paths.data}/${item}/raw"
FEATURES = "${paths.data}/${item}/features"
MODEL = "${paths.models}/${item}"
REPORTS = "${paths.reports}/${item}"


@dataclass(frozen=True)
class Output:
    path: str
    kind: str = "out"  # out | metric | plot
    cache: bool = True


@dataclass(frozen=True)
class Stage:
    name: str
    description: str
    params: tuple[str, ...]  # keys under the domain's section; "seed" etc. are global
    deps: tuple[str, ...]  # data this stage reads (code deps are derived from its imports)
    outs: tuple[Output, ...]
    touches_network: bool = False  # retried by the Prefect flow
    # the module has ``source_changed(params, domain)``: inputs DVC cannot see (a folder
    # named by a param) that make the stage stale even when ``dvc status`` says current
    watches_source: bool = False

    def module(self) -> ModuleType:
        return importlib.import_module(f"nnpipe.stages.{self.name}")

    def run(self, params: Params, domain: str) -> dict:
        return self.module().run(params, domain)

    def source_changed(self, params: Params, domain: str) -> bool:
        return self.watches_source and self.module().source_changed(params, domain)


STAGES: dict[str, Stage] = {
    s.name: s
    for s in (
        Stage("ingest", "read the configured source into a de-duplicated raw dataset",
              params=("classes", "ingest", "seed"), deps=(),
              outs=(Output(RAW),), touches_network=True, watches_source=True),
        Stage("featurize", "split, resize and write TFRecords",
              params=("classes", "featurize", "seed"), deps=(RAW,),
              outs=(Output(FEATURES),)),
        Stage("train", "fit the CNN, log it to MLflow",
              params=("train", "augment", "seed"), deps=(FEATURES,),
              outs=(Output(MODEL), Output(f"{REPORTS}/history.csv", "plot", cache=False))),
        Stage("evaluate", "test metrics with a threshold chosen on validation; plots",
              params=("evaluate",), deps=(FEATURES, MODEL),
              outs=(Output(f"{REPORTS}/metrics.json", "metric", cache=False),
                    Output(f"{REPORTS}/plots", "plot", cache=False),
                    Output(f"{REPORTS}/figures", "plot", cache=False))),
        Stage("register", "register the model, set challenger, gate champion",
              params=("register",), deps=(MODEL, f"{REPORTS}/metrics.json", FEATURES),
              outs=(Output(f"{REPORTS}/registration.json", cache=False),),
              touches_network=True),
    )
}
PIPELINE: tuple[str, ...] = tuple(STAGES)


class MissingInputError(NnpipeError, FileNotFoundError):
    """A stage's input is absent: the stage before it has not run (or failed)."""


def require(path: Path, producer: str, domain: str) -> Path:
    """Return ``path`` if it exists, else say which stage makes it and how to run it."""
    if not path.exists():
        raise MissingInputError(
            f"{path} does not exist; it is made by the {producer!r} stage. Run "
            f"`nnpipe stage {producer} --domain {domain}` or `dvc repro {producer}@{domain}`."
        )
    return path


def cli_main(name: str, run: Callable[[Params, str], dict], argv: list[str] | None) -> int:
    """The ``main()`` of every stage: parse --domain/--params/-S, run, report errors plainly."""
    parser = argparse.ArgumentParser(prog=f"nnpipe stage {name}",
                                     description=STAGES[name].description)
    parser.add_argument("--domain", default="xray", choices=DOMAINS)
    parser.add_argument("--params", default=PARAMS_FILE)
    parser.add_argument("-S", "--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    configure_logging()
    with report_errors():
        params = load_params(args.params, args.overrides)
        log.info("stage %s@%s", name, args.domain)
        run(params, args.domain)
    return 0
