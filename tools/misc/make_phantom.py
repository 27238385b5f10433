"""Thin door into :mod:`spinexr.cli.make_phantom` (the same as ``python -m spinexr.cli.make_phantom``)."""
import sys

from spinexr.cli.make_phantom import main

if __name__ == '__main__':
    sys.exit(main())
