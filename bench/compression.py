"""Regenerate the variant table of a domain: run the compress stage and print its report.

    python bench/compression.py --domain xray            # in a project where train ran
    python bench/compression.py --domain ohlcv -S ohlcv.compress.threads=2

The stage does the measuring (each variant in a child process, run by LiteRT); this script
only runs it and prints ``reports/<domain>/compression.md`` with the ratios against the
Keras float32 reference.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--domain", choices=["xray", "ohlcv"], required=True)
    parser.add_argument("-S", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    cmd = [sys.executable, "-m", "nnpipe", "stage", "compress", "--domain", args.domain]
    for item in args.overrides:
        cmd += ["-S", item]
    done = subprocess.run(cmd)
    if done.returncode != 0:
        return done.returncode
    print(Path("reports", args.domain, "compression.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
