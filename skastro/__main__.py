"""``python -m skastro`` runs the command line."""

from skastro.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
