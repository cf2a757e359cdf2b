"""``dvc plots show`` / ``dvc plots diff`` pages that render with no network.

DVC's default page loads Vega, Vega-Lite and Vega-Embed from a CDN, so offline (or behind a
firewall) the charts are blank. The project's ``.dvc/config`` names an HTML template
instead (``plots.html_template``); this module writes it, with the three libraries bundled
in from the ``vl-convert-python`` package. The template has no ``{scripts}`` placeholder,
so DVC's CDN script tags are never added.

    python -m nnpipe.dvc.plots     # (re)write .dvc/offline-plots.html; `make setup` runs it
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from nnpipe.io import atomic_write_text

log = logging.getLogger(__name__)

TEMPLATE_NAME = "offline-plots.html"  # relative to .dvc/, as .dvc/config names it

# DVC writes each Vega plot as a <div> holding an inline script that calls vegaEmbed. The
# bundle is an ES module (deferred), so the plots wait inert in a <template> and their
# scripts are re-created, which runs them, once vegaEmbed exists.
ACTIVATE = """
window.vegaEmbed = vegaEmbed;
const plots = document.getElementById("nnpipe-plots").content;
document.body.prepend(document.importNode(plots, true));
for (const old of document.querySelectorAll("body script:not([type=module])")) {
  const script = document.createElement("script");
  script.textContent = old.textContent;
  old.replaceWith(script);
}
"""

PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    {refresh_tag}
    <title>DVC plots</title>
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
<template id="nnpipe-plots">
{plot_divs}
</template>
<script type="module">
BUNDLE
</script>
</body>
</html>
"""


def render_template() -> str:
    """The page, with Vega's libraries inline (about 0.9 MB)."""
    import vl_convert

    bundle = vl_convert.javascript_bundle(ACTIVATE)
    if "</script" in bundle:  # it would end the page's script element early
        raise RuntimeError("the Vega bundle contains '</script'; it cannot be inlined")
    return PAGE.replace("BUNDLE", bundle)


def template_path(root: Path) -> Path:
    return root / ".dvc" / TEMPLATE_NAME


def ensure_template(root: Path, force: bool = False) -> Path:
    """Write the template into the DVC project at ``root`` unless it is already there."""
    path = template_path(root)
    if force or not path.is_file():
        atomic_write_text(path, render_template())
        log.info("wrote %s (dvc plots render offline)", path)
    return path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else Path.cwd()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ensure_template(root, force=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
