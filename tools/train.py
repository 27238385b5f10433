"""Thin door into :mod:`spinexr.cli.train` (the same as ``python -m spinexr.cli.train``)."""
from spinexr.cli.train import main

if __name__ == '__main__':
    main()
