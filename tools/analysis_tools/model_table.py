"""Thin door into :mod:`spinexr.cli.model_table` (same as ``python -m spinexr.cli.model_table``)."""
from spinexr.cli.model_table import main

if __name__ == '__main__':
    main()
