"""Thin door into :mod:`spinexr.cli.ensemble_checkpoint` (the same as ``python -m ...``)."""
from spinexr.cli.ensemble_checkpoint import main

if __name__ == '__main__':
    main()
