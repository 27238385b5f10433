"""Thin door into :mod:`spinexr.cli.cross_validate` (``python -m spinexr.cli.cross_validate``)."""
from spinexr.cli.cross_validate import main

if __name__ == '__main__':
    main()
