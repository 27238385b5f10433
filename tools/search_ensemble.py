"""Thin door into :mod:`spinexr.cli.search_ensemble` (``python -m spinexr.cli.search_ensemble``)."""
from spinexr.cli.search_ensemble import main

if __name__ == '__main__':
    main()
