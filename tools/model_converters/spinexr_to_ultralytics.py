"""Thin door into :mod:`spinexr.cli.spinexr_to_ultralytics` (the same as ``python -m spinexr.cli.spinexr_to_ultralytics``)."""
from spinexr.cli.spinexr_to_ultralytics import main

if __name__ == '__main__':
    main()
