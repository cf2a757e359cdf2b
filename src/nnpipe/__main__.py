"""``python -m nnpipe`` runs the command line."""

from nnpipe.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
