"""Thin door into :mod:`spinexr.cli.infer` (the same as ``python -m spinexr.cli.infer``)."""
import sys

from spinexr.cli.infer import main

if __name__ == '__main__':
    sys.exit(main())
