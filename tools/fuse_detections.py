"""Thin door into :mod:`spinexr.cli.fuse_detections` (the same as ``python -m spinexr.cli.fuse_detections``)."""
from spinexr.cli.fuse_detections import main

if __name__ == '__main__':
    main()
