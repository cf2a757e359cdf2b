"""The codebase's own rules: one registry, one TensorFlow gateway, no import side effects
(the layers, and which way imports point between them: test_layers.py)."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nnpipe.config import load_params
from nnpipe.domains.registry import DOMAINS
from nnpipe.dvc.pipeline_file import code_dependencies, render_dvc_yaml
from nnpipe.stages import PIPELINES, STAGES

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "nnpipe"


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_dvc_yaml_is_generated_from_the_registry():
    assert (ROOT / "dvc.yaml").read_text() == render_dvc_yaml(), (
        "dvc.yaml is stale: run `nnpipe dvc-yaml`"
    )


def test_every_registered_stage_has_a_module_with_run_and_main():
    assert set(PIPELINES) == set(DOMAINS)
    assert {
        p.name for p in (PACKAGE / "domains").iterdir() if p.is_dir() and p.name != "__pycache__"
    } == set(DOMAINS)
    for domain, stages in PIPELINES.items():
        modules = {
            p.stem
            for p in (PACKAGE / "domains" / domain / "stages").glob("*.py")
            if p.stem != "__init__"
        }
        assert modules == {s.step for s in stages}, domain
        for stage in stages:
            module = stage.module()
            assert callable(module.run) and callable(module.main)
            assert stage.name == f"{domain}-{stage.step}"


# each generic stage, the hook that gives the domain's part, and what the part must have
GENERIC_PARTS = {
    "tune": ("tuning", ("objective", "fit_trial")),
    "compress": ("compression", ("metric", "parity", "inputs", "report", "table_fields")),
    "promote": ("promotion", ("selection_rule", "deploy_spec")),
}


def test_generic_stages_run_the_domains_part_through_the_contract():
    for domain, stages in PIPELINES.items():
        for stage in (s for s in stages if s.generic):
            hook, members = GENERIC_PARTS[stage.step]
            part = getattr(DOMAINS[domain], hook)()
            missing = [m for m in members if not hasattr(part, m)]
            assert missing == [], f"{domain}.{hook}() lacks {missing}"
            # the part is in the domain's own module of the step: dvc.yaml's code deps
            assert type(part).__module__ == stage.domain_module_name
            assert stage.code_modules == (f"nnpipe.stages.{stage.step}", stage.domain_module_name)
    assert {s.step for s in STAGES.values() if s.generic} == set(GENERIC_PARTS)


def test_stage_module_main_runs_its_own_domain_only(capsys):
    from nnpipe.stages import get_stage

    with pytest.raises(SystemExit) as refused:  # argparse refuses the other domain
        get_stage("train", "ohlcv").module().main(["--domain", "xray"])
    assert refused.value.code == 2  # argparse's usage error, not a run that failed
    err = capsys.readouterr().err
    assert "argument --domain: invalid choice: 'xray'" in err and "ohlcv" in err, err


@pytest.mark.parametrize("domain", DOMAINS)
def test_flows_use_the_registry_not_their_own_stages(domain):
    flow_file = ROOT / "flows" / f"{domain}_training.py"
    assert f'run_domain("{domain}"' in flow_file.read_text()
    assert imports_of(flow_file) <= {"__future__", "prefect", "nnpipe"}


def test_a_domain_stage_depends_on_its_own_domain_code_only():
    for name, stage in STAGES.items():
        other = {d for d in DOMAINS if d != stage.domain}
        deps = {f for m in stage.code_modules for f in code_dependencies(m)}
        # another domain's declaration (the registry imports it) and its params model
        # (params.yaml is validated whole, on load) but none of its code
        declaration = {
            f"src/nnpipe/domains/{d}/{f}"
            for d in other
            for f in ("__init__.py", "domain.py", "params.py")
        }
        leaked = [
            f
            for f in deps
            for d in other
            if f.startswith(f"src/nnpipe/domains/{d}/") and f not in declaration
        ]
        assert leaked == [], name


def test_only_keras_env_imports_tensorflow():
    offenders = [
        p.relative_to(ROOT).as_posix()
        for p in [*PACKAGE.rglob("*.py"), *(ROOT / "flows").rglob("*.py")]
        if p.name != "keras_env.py" and imports_of(p) & {"tensorflow", "tf_keras", "keras"}
    ]
    assert offenders == []


def test_keras_is_keras_2():
    from nnpipe.keras_env import keras, tf

    assert keras.__version__.startswith("2.")
    assert tf.keras.Model is keras.Model  # TensorFlow itself resolves to Keras 2


def test_importing_the_package_has_no_side_effects(tmp_path):
    code = (
        "import os, importlib, nnpipe, nnpipe.stages, nnpipe.domains.xray\n"
        "before = set(os.listdir('.'))\n"
        "for m in ['config', 'io', 'layout', 'champion_gate', 'dvc.folder_hash', 'errors',\n"
        "          'domains.xray.dataset', 'domains.xray.sources', 'domains.xray.images',\n"
        "          'domains.xray.synthetic', 'domains.xray.stages.ingest',\n"
        "          'domains.ohlcv.stages.ingest', 'domains.ohlcv.sources',\n"
        "          'domains.ohlcv.windows', 'domains.ohlcv.forecasting',\n"
        "          'domains.ohlcv.market', 'domains.ohlcv.validation', 'domains.registry',\n"
        "          'dvc.pipeline_file', 'logs', 'tuning.oracle',\n"
        "          'tuning.search', 'tuning.trials', 'compression.selection',\n"
        "          'serving.predictor', 'serving.deploy', 'prefect_env']:\n"
        "    importlib.import_module('nnpipe.' + m)\n"
        "import logging\n"
        "assert not logging.getLogger().handlers, 'logging configured on import'\n"
        "assert set(os.listdir('.')) == before, 'files created on import'\n"
        "import sys; assert 'tensorflow' not in sys.modules, 'TF imported by non-TF modules'\n"
        "assert 'mlflow' not in sys.modules and 'prefect' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)


def test_dvc_resolves_stage_paths_to_the_layout_python_uses(tmp_path):
    """Non-default paths: DVC's templating of dvc.yaml and nnpipe.layout must agree."""
    import shutil

    import yaml
    from dvc.repo import Repo

    from nnpipe.config import load_params
    from nnpipe.layout import domain_layout

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["paths"] = {"data": "d1", "models": "m1", "reports": "r1", "cache": ".c"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    Repo.init(str(tmp_path))
    params = load_params(tmp_path / "params.yaml")
    with Repo(str(tmp_path)) as repo:
        outs = {str(o.def_path) for s in repo.index.stages for o in s.outs}
        deps = {str(d.def_path) for s in repo.index.stages for d in s.deps}
    for domain in DOMAINS:
        layout = domain_layout(params, domain)
        for path in (
            layout.raw,
            layout.features,
            layout.model,
            layout.metrics,
            layout.plots,
            layout.figures,
            layout.history_plot,
            layout.registration,
            layout.hyperparameters,
            layout.tuning,
            layout.tuning_trials,
            layout.variants,
            layout.compression,
            layout.deploy,
            layout.promotion,
        ):
            assert str(path) in outs, path
        assert str(layout.raw) in deps and str(layout.features) in deps


def test_dvc_yaml_has_one_stage_per_domain_and_step():
    import yaml

    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    assert list(spec["stages"]) == [s.name for d in DOMAINS for s in PIPELINES[d]]
    for name, stage in spec["stages"].items():
        domain, step = name.split("-", 1)
        assert stage["cmd"] == f"python -m nnpipe stage {step} --domain {domain}"


@pytest.mark.parametrize("domain", list(DOMAINS))
def test_tune_depends_on_every_train_key_but_epochs(domain):
    """A trial's epochs are the tune section's: `dvc exp run -S <domain>.train.epochs=N`
    must not make the search stale, every other train key must."""
    from nnpipe.dvc.pipeline_file import params_keys

    keys = params_keys(f"{domain}-tune")
    train = type(DOMAINS[domain].section(load_params(ROOT / "params.yaml")).train)
    assert [k for k in keys if k.startswith(f"{domain}.train.")] == [
        f"{domain}.train.{k}" for k in train.model_fields if k != "epochs"
    ]
    assert f"{domain}.tune" in keys and "seed" in keys
    assert f"{domain}.train" in params_keys(f"{domain}-train")  # train reads them all


def test_a_params_file_lacking_a_key_a_stage_depends_on_is_refused(tmp_path):
    import yaml

    from nnpipe.config import ParamsError
    from nnpipe.dvc.repo import check_params_present

    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    check_params_present(["xray-tune", "ohlcv-train"], tmp_path)
    del raw["xray"]["train"]["shuffle_buffer"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    check_params_present(["xray-train", "ohlcv-tune"], tmp_path)  # train: the whole section
    with pytest.raises(
        ParamsError, match=r"no xray\.train\.shuffle_buffer, which dvc\.yaml's xray-tune"
    ):
        check_params_present(["xray-ingest", "xray-tune"], tmp_path)


def test_test_files_have_unique_names():
    """pytest imports test files by their base name (no packages): two files of one name
    in different folders stop the whole suite with "import file mismatch"."""
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
