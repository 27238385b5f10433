"""Thin door into :mod:`spinexr.cli.run_comparison` (``python -m spinexr.cli.run_comparison``)."""
from spinexr.cli.run_comparison import main

if __name__ == '__main__':
    main()
