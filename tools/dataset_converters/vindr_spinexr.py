"""Thin door into :mod:`spinexr.cli.convert_vindr_spinexr` (the same as ``python -m spinexr.cli.convert_vindr_spinexr``)."""
import sys

from spinexr.cli.convert_vindr_spinexr import main

if __name__ == '__main__':
    sys.exit(main())
