"""The docs: the mkdocs site builds with ``--strict`` and loads nothing from the network,
the README stays an entry point, every relative link lands on a file, and the project
files a newcomer looks for (CONTRIBUTING, CHANGELOG, LICENSE) are there."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README_MAX_WORDS = 2500

# sha256 of the Apache License 2.0 text (apache.org's LICENSE-2.0.txt) with every run of
# whitespace collapsed to one space, so line endings or re-wrapping do not matter
APACHE_2_SHA256 = "0ffddef9e48f8a09aed5caf2d44f7ba1c1be2d9b8e0a6f693b1635b2d5566645"

_FENCE = re.compile(r"^(`{3,}|~{3,}).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.DOTALL)
# [text](target) and ![alt](target), with an optional "title"
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted(DOCS.rglob("*.md"))]


def _relative_links(text: str) -> list[str]:
    """The link targets of a Markdown text that point into the repository: not in code, not
    a URL with a scheme, not a bare anchor."""
    prose = _CODE_SPAN.sub("", _FENCE.sub("", text))
    targets = []
    for target in _LINK.findall(prose):
        if target.startswith("#") or re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            continue
        targets.append(target)
    return targets


class _ExternalResources(HTMLParser):
    """Collects what a page would fetch from another host: any ``src=`` and a ``<link>``'s
    ``href=`` that is an absolute http(s) or protocol-relative URL."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None or not _EXTERNAL.match(value.strip()):
                continue
            if name in ("src", "srcset") or (tag == "link" and name == "href"):
                self.found.append(f"<{tag} {name}={value!r}>")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built as a user would, with ``--strict``: any warning (a broken link or
    anchor, a page missing from ``nav``) fails the build."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, (
        f"mkdocs build --strict failed (exit {proc.returncode}); fix what it names:\n"
        f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    return out


def test_site_builds_strict(site: Path) -> None:
    pages = {p.relative_to(site).as_posix() for p in site.rglob("*.html")}
    for page in ("index.html", "stages/train.html", "domains/ohlcv.html", "serving.html"):
        assert page in pages, f"{page} missing from the built site: {sorted(pages)}"


def test_site_loads_nothing_external(site: Path) -> None:
    problems = []
    for page in sorted(site.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        parser = _ExternalResources()
        parser.feed(text)
        problems += [f"{page.relative_to(site)}: {found}" for found in parser.found]
        # Material fetches Mermaid from a CDN when a page has a diagram
        if 'class="mermaid"' in text:
            problems.append(f"{page.relative_to(site)}: a Mermaid diagram (loads from a CDN)")
    for sheet in sorted(site.rglob("*.css")):
        for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", sheet.read_text(encoding="utf-8")):
            if _EXTERNAL.match(url.strip()):
                problems.append(f"{sheet.relative_to(site)}: url({url})")
    assert not problems, "the docs site would load from the network:\n" + "\n".join(problems)


def test_readme_is_short() -> None:
    words = len((ROOT / "README.md").read_text(encoding="utf-8").split())  # as `wc -w`
    assert words <= README_MAX_WORDS, (
        f"README.md has {words} words, over {README_MAX_WORDS}: move detail into docs/ "
        "and link to it"
    )


def test_relative_links_resolve() -> None:
    broken = []
    for md in _markdown_files():
        for target in _relative_links(md.read_text(encoding="utf-8")):
            path = target.split("#", 1)[0]
            if path and not (md.parent / path).exists():
                broken.append(f"{md.relative_to(ROOT)}: {target}")
    assert not broken, "links to files that do not exist:\n" + "\n".join(broken)


def test_relative_link_finder() -> None:
    text = (
        'See [a](docs/a.md#x), ![i](img.png "t"), [web](https://x.org), [top](#top),\n'
        "`[not](code.md)` and\n```\n[nor](fenced.md)\n```\n[mail](mailto:a@b.c)"
    )
    assert _relative_links(text) == ["docs/a.md#x", "img.png"]


def test_project_files() -> None:
    for name in ("CONTRIBUTING.md", "CHANGELOG.md", "LICENSE"):
        assert (ROOT / name).is_file(), f"{name} is missing at the repository's root"
    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    digest = hashlib.sha256(" ".join(license_text.split()).encode()).hexdigest()
    assert digest == APACHE_2_SHA256, (
        "LICENSE is not the Apache License 2.0 text: copy it unchanged from "
        "https://www.apache.org/licenses/LICENSE-2.0.txt"
    )
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "Apache-2.0", "pyproject.toml's license and LICENSE disagree"
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in changelog, "CHANGELOG.md needs an '## [Unreleased]' section"
