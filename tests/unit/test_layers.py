"""The layers of ``src/nnpipe`` and the ways imports may point between them, enforced.

Every module under ``src/nnpipe`` is put in one layer by its path (no list of file names to
keep up to date; a new module lands in a layer by where it is created):

- **orchestration**: ``cli/`` (the commands), ``__main__``, ``flow_tasks`` and
  ``flow_monitor`` (the Prefect flows' tasks) and ``dvc.pipeline_file`` (writes
  ``dvc.yaml``): the entry points and the two orchestrators' wiring of the stages.
- **stages**: ``nnpipe/stages/`` (the stage registry and the code stages share) and
  ``nnpipe/domains/<name>/stages/`` (one module per pipeline step, the *stage modules*).
- **serving**: ``nnpipe/serving/`` and each domain's ``predictor`` and ``batch`` modules
  and ``api`` package (its routes).
- **adapters** (MLflow, DVC, Prefect at the edge): ``tracking/``, ``tracking_http``,
  ``store`` (where MLflow's store is), ``dvc/`` (but ``dvc.pipeline_file``),
  ``prefect_env``, ``mlflow_ui``, ``project_lock`` (the run lock, on DVC's project root),
  ``monitor_events`` (the monitor's alarm as a Prefect event)
  and ``tuning/cluster`` (trials on Prefect-on-Dask).
- **declarations**: ``domains/registry`` and each ``domains/<name>/domain``: the registry of
  domains that generic code asks, whose hooks import a domain's working modules when called.
- **core**: everything else (each domain's core modules, ``compression``, ``tuning``'s
  search, ``io``, ``layout``, ``config``, ``keras_env``, ...).

Rules (``import`` statements anywhere in a module count, inside functions too; imports
under ``if TYPE_CHECKING:`` do not, they never run):

1. core imports no adapters, serving, stages or orchestration;
2. a stage module imports no other stage module (the ``nnpipe.stages`` package, the
   registry and the stages' shared code, is allowed);
3. adapters are leaves: they import no stages, serving or orchestration (they may ask the
   registry of domains, as all generic code does, for a domain's params section);
4. serving imports no stages and no orchestration;
5. a domain's modules never import another domain's (the registry of domains, outside
   every domain, imports each declaration);
6. MLflow, DVC, Prefect and Dask are imported by adapters, serving and orchestration only;
7. no import cycles between nnpipe modules. A declaration's hooks (its imports inside
   functions) are left out of this one: every caller of the registry would otherwise be in
   one cycle with every hook, which is the lazy registry the domains are designed as
   (the hooks are still held to rules 1 to 6).

There are no exceptions: a violation is fixed in the code, not listed here.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PACKAGE = SRC / "nnpipe"

ORCHESTRATION = "orchestration"
STAGES = "stages"
SERVING = "serving"
ADAPTERS = "adapters"
DECLARATIONS = "declarations"
CORE = "core"

# top-level modules (or packages) of nnpipe that are adapters, by name
ADAPTER_ROOTS = {
    "tracking",
    "tracking_http",
    "store",
    "dvc",
    "prefect_env",
    "mlflow_ui",
    "project_lock",
    "monitor_events",
}
ORCHESTRATION_ROOTS = {"cli", "__main__", "flow_tasks", "flow_monitor"}  # modules or packages
ORCHESTRATION_MODULES = {"dvc.pipeline_file"}
SERVING_IN_DOMAINS = {"predictor", "api", "batch"}
EDGE_PACKAGES = {"mlflow", "dvc", "prefect", "prefect_dask", "dask", "distributed"}

FORBIDDEN = {  # layer -> layers it must not import
    CORE: {ADAPTERS, SERVING, STAGES, ORCHESTRATION},
    ADAPTERS: {STAGES, SERVING, ORCHESTRATION},
    SERVING: {STAGES, ORCHESTRATION},
}


def layer_of(module: str) -> str:
    """The layer of an nnpipe module, from its dotted name (see the module doc)."""
    parts = module.split(".")[1:]
    inner = ".".join(parts)
    if inner in ORCHESTRATION_MODULES or (parts[:1] and parts[0] in ORCHESTRATION_ROOTS):
        return ORCHESTRATION
    if parts[:1] == ["stages"] or (parts[:1] == ["domains"] and parts[2:3] == ["stages"]):
        return STAGES
    if parts[:1] == ["serving"] or (
        parts[:1] == ["domains"] and len(parts) >= 3 and parts[2] in SERVING_IN_DOMAINS
    ):
        return SERVING
    if (parts[:1] and parts[0] in ADAPTER_ROOTS) or inner == "tuning.cluster":
        return ADAPTERS
    if inner == "domains.registry" or (
        parts[:1] == ["domains"] and len(parts) == 3 and parts[2] == "domain"
    ):
        return DECLARATIONS
    return CORE


def is_stage_module(module: str) -> bool:
    """A pipeline step's module (``nnpipe.domains.<name>.stages.<step>``)."""
    parts = module.split(".")
    return parts[1:2] == ["domains"] and parts[3:4] == ["stages"] and len(parts) == 5


def domain_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if parts[1:2] == ["domains"] and len(parts) > 3 else None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str  # an nnpipe module, or a top-level third-party package
    line: int
    in_function: bool

    def __str__(self) -> str:
        path = MODULES[self.importer].relative_to(ROOT)
        return f"{path}:{self.line} imports {self.imported}"


def _is_type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(tree: ast.AST):
    """(import node, inside a function?) for every import that runs, at any depth."""
    todo = [(tree, False)]
    while todo:
        node, in_function = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, in_function
        inside = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        todo += [(c, inside) for c in ast.iter_child_nodes(node) if not _is_type_checking(c)]


def _resolve(name: str) -> str:
    """The nnpipe module a dotted name is, or lies in (``pkg.module.attr`` -> ``pkg.module``)."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _targets(node: ast.Import | ast.ImportFrom, module: str) -> set[str]:
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            package = module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            source = f"{base}.{node.module}" if node.module else base
        else:
            source = node.module or ""
        names = [f"{source}.{a.name}" for a in node.names]  # `from pkg import module`
    found = set()
    for name in names:
        if name.split(".")[0] == "nnpipe":
            found.add(_resolve(name))
        else:
            found.add(name.split(".")[0])
    return found


def imports_of(module: str) -> list[Import]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found = {
        Import(module, target, node.lineno, in_function)
        for node, in_function in _statements(tree)
        for target in _targets(node, module)
        if target != module
    }
    return sorted(found, key=lambda i: (i.line, i.imported))


IMPORTS = [i for m in MODULES for i in imports_of(m)]
INTERNAL = [i for i in IMPORTS if i.imported.split(".")[0] == "nnpipe"]


def violations() -> dict[tuple[str, str], str]:
    """Every import that breaks rules 1 to 6, with the rule it breaks."""
    found: dict[tuple[str, str], str] = {}
    for i in INTERNAL:
        source, target = layer_of(i.importer), layer_of(i.imported)
        if target in FORBIDDEN.get(source, set()):
            found[i.importer, i.imported] = f"{i}: {source} must not import {target}"
        if is_stage_module(i.importer) and is_stage_module(i.imported):
            found[i.importer, i.imported] = f"{i}: a stage module imports another stage"
        mine, theirs = domain_of(i.importer), domain_of(i.imported)
        if mine and theirs and mine != theirs:
            found[i.importer, i.imported] = f"{i}: domain {mine} imports domain {theirs}"
    for i in IMPORTS:
        if i.imported in EDGE_PACKAGES and layer_of(i.importer) not in {
            ADAPTERS,
            SERVING,
            ORCHESTRATION,
        }:
            found[i.importer, i.imported] = (
                f"{i}: {layer_of(i.importer)} must reach {i.imported} through an adapter"
            )
    return found


def test_every_module_has_a_layer_and_the_layers_are_all_used():
    layers = {m: layer_of(m) for m in MODULES}
    assert set(layers.values()) == {CORE, ADAPTERS, STAGES, SERVING, DECLARATIONS, ORCHESTRATION}
    # spot checks of the path rules
    assert layers["nnpipe.domains.xray.stages.train"] == STAGES
    assert layers["nnpipe.stages"] == STAGES
    assert layers["nnpipe.domains.ohlcv.predictor"] == SERVING
    assert layers["nnpipe.tracking.runs"] == ADAPTERS
    assert layers["nnpipe.dvc.repo"] == ADAPTERS
    assert layers["nnpipe.dvc.pipeline_file"] == ORCHESTRATION
    assert layers["nnpipe.domains.ohlcv.domain"] == DECLARATIONS
    assert layers["nnpipe.domains.ohlcv.sources"] == CORE
    assert layers["nnpipe.tuning.search"] == CORE


def test_the_import_reader_sees_imports_inside_functions():
    found = {(i.imported, i.in_function) for i in imports_of("nnpipe.tracking.runs")}
    assert ("prefect", True) in found  # imported when a flow runs, inside a function
    assert ("nnpipe.liveness", False) in found


def test_imports_point_the_way_the_layers_allow():
    found = list(violations().values())
    assert found == [], "\n".join(found)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for i in INTERNAL:
        if i.in_function and layer_of(i.importer) == DECLARATIONS:
            continue  # a hook's import (rule 7)
        graph[i.importer].add(i.imported)
    return graph


def test_no_import_cycles():
    cycles = _cycles(import_graph())
    assert cycles == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
