"""Thin door into :mod:`spinexr.cli.run_ablation` (``python -m spinexr.cli.run_ablation``)."""
from spinexr.cli.run_ablation import main

if __name__ == '__main__':
    main()
