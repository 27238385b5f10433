"""Thin door into :mod:`spinexr.cli.test` (the same as ``python -m spinexr.cli.test``)."""
from spinexr.cli.test import main

if __name__ == '__main__':
    main()
