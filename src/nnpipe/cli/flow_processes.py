"""The domains' flows side by side: ``nnpipe run`` starts each flow in its own process
(each imports TensorFlow once and runs its stages in order, as a flow run alone does), up
to ``--jobs`` at a time, and waits for all of them.

A child is handed the parent's project lock (:func:`nnpipe.project_lock.handed_lock`) and
the Prefect server's address; it writes its stage results to a file the parent reads for
the summary. The domains share nothing they write but ``dvc.lock`` and DVC's state
(serialised by :mod:`nnpipe.dvc.repo`) and the MLflow store (created here, before the
children start, so that two first runs do not both create its tables).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

from nnpipe.errors import NnpipeError

log = logging.getLogger("nnpipe")


class PipelineFailed(NnpipeError):
    """A flow run did not complete; its message is the failing stage's."""


def run_flow(domain: str, params_file: str, force: bool) -> tuple[dict[str, Any], float]:
    """Run one domain's flow in this process: its stage results and its wall time."""
    from typing import cast

    from prefect.flows import load_flow_from_entrypoint

    from nnpipe.domains.registry import get_domain

    flow: Any = load_flow_from_entrypoint(get_domain(domain).flow_entrypoint)
    started = time.monotonic()
    state = cast(Any, flow(params_file=params_file, force=force, return_state=True))
    if not state.is_completed():
        raise PipelineFailed(f"flow {flow.name} ended {state.name}: {state.message}")
    return cast(dict[str, Any], state.result()), time.monotonic() - started


class FlowsDone(NamedTuple):
    """What the children reported, per domain: stage results, the flow's wall time, and
    the domain's summary lines (read there, where its modules are imported already)."""

    results: dict[str, Any]
    seconds: dict[str, float]
    headlines: dict[str, list[str]]


def run_side_by_side(
    domains: list[str], params_file: str, force: bool, jobs: int, prefect_api: str | None
) -> FlowsDone:
    """Each domain's flow in a child process, ``jobs`` at a time; what they report, in
    ``domains``' order. Raises :class:`PipelineFailed` naming every flow that
    failed, once all have ended (one domain's failure does not stop the others)."""
    from nnpipe.project_lock import handed_lock
    from nnpipe.watchdog import stop_tree, stop_with_me

    fd, handed = handed_lock()
    env = {**os.environ, **handed, **({"PREFECT_API_URL": prefect_api} if prefect_api else {})}
    waiting = list(domains)
    running: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    outcomes: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="nnpipe-flows-") as folder:
        try:
            while waiting or running:
                while waiting and len(running) < jobs:
                    domain = waiting.pop(0)
                    out = Path(folder) / f"{domain}.json"
                    command = [sys.executable, "-m", __name__, domain, params_file, str(out)]
                    command += ["--force"] if force else []
                    child = subprocess.Popen(command, env=env, pass_fds=(fd,))
                    stop_with_me(child.pid)  # a kill -9 of this process stops it too
                    running[domain] = (child, out)
                    log.info("%s flow started (pid %d)", domain, child.pid)
                for domain, (process, out) in list(running.items()):
                    if process.poll() is not None:
                        del running[domain]
                        outcomes[domain] = _outcome(domain, process.returncode, out)
                time.sleep(0.2)
        finally:
            for process, _ in running.values():  # interrupted: stop what still runs
                stop_tree(process.pid)  # TERM, then KILL what is left after 5 s
                process.wait()
    failures = [o["error"] for o in outcomes.values() if "error" in o]
    if failures:
        raise PipelineFailed("; ".join(failures))
    return FlowsDone(
        {d: outcomes[d]["results"] for d in domains},
        {d: float(outcomes[d]["seconds"]) for d in domains},
        {d: [str(line) for line in outcomes[d]["headlines"]] for d in domains},
    )


def _outcome(domain: str, returncode: int, out: Path) -> dict[str, Any]:
    """What a child reported: its results, or why it failed."""
    try:
        outcome = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        outcome = {}
    if returncode == 0 and {"results", "seconds", "headlines"} <= set(outcome):
        return outcome
    why = outcome.get("error") or f"its process ended with exit status {returncode}"
    return {"error": f"the {domain} flow failed: {why} (its lines above say more)"}


def prepare_tracking_store(uri: str) -> None:
    """Create a new local SQLite MLflow store's tables now, in one process: two flows
    starting together on it would both run its migrations (MLflow migrates only a new
    store on its own; a server, or a store that exists, has nothing to race on)."""
    if not uri.startswith("sqlite:///") or Path(uri.removeprefix("sqlite:///")).exists():
        return
    from mlflow import MlflowClient

    MlflowClient(uri).search_experiments(max_results=1)


def main(argv: list[str] | None = None) -> int:
    """A child: run one domain's flow and write its results (or its error) to a file."""
    from nnpipe.errors import report_errors
    from nnpipe.io import atomic_write_text
    from nnpipe.logs import configure_logging
    from nnpipe.project_lock import hold_project

    parser = argparse.ArgumentParser(prog="python -m nnpipe.cli.flow_processes")
    parser.add_argument("domain")
    parser.add_argument("params_file")
    parser.add_argument("result_file", type=Path)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    configure_logging(tag=args.domain)
    with report_errors(), hold_project(f"the {args.domain} flow of `nnpipe run`"):
        try:
            results, seconds = run_flow(args.domain, args.params_file, args.force)
        except PipelineFailed as exc:
            atomic_write_text(args.result_file, json.dumps({"error": str(exc)}))
            raise
        from nnpipe.config import load_params
        from nnpipe.domains.registry import get_domain

        headlines = get_domain(args.domain).summary_lines(load_params(args.params_file))
        outcome = {"results": results, "seconds": seconds, "headlines": headlines}
        atomic_write_text(args.result_file, json.dumps(outcome, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
