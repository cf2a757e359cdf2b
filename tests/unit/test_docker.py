"""Static checks of docker/ (no Docker engine runs on the development machines)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()


def instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
            for line in (raw.strip() for raw in joined.splitlines())
            if line and not line.startswith("#")]


def test_base_images_are_pinned_and_the_build_is_multi_stage():
    steps = instructions(DOCKERFILE)
    args = dict(re.findall(r"ARG (\w+)=(\S+)", DOCKERFILE))
    froms = [rest for kind, rest in steps if kind == "FROM"]
    assert len(froms) >= 2
    for rest in froms:
        image = rest.split()[0]
        image = args.get(image.strip("${}"), image)
        assert re.search(r":\d+\.\d+\.\d+", image), f"unpinned base image {image}"


def test_dependencies_come_from_the_lock_file_and_the_user_is_not_root():
    steps = instructions(DOCKERFILE)
    runs = " ".join(rest for kind, rest in steps if kind == "RUN")
    assert "uv sync --frozen" in runs
    assert "uv.lock" in " ".join(rest for kind, rest in steps if kind == "COPY")
    users = [rest for kind, rest in steps if kind == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert any(kind == "HEALTHCHECK" for kind, _ in steps)


def test_the_code_that_runs_is_the_checkout_dvc_hashes():
    assert "/project/src" in DOCKERFILE and "--no-install-project" in DOCKERFILE
    assert "WORKDIR /project" in DOCKERFILE


def test_copied_paths_exist():
    for kind, rest in instructions(DOCKERFILE):
        if kind == "COPY" and "--from" not in rest:
            for src in rest.replace("--chown=nnpipe:nnpipe", "").split()[:-1]:
                assert (ROOT / src).exists(), src
