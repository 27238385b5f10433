"""Models: the YOLO11 adapter, its data preprocessor, losses, classifiers."""
from . import classifiers, data_preprocessors, detectors, heads, losses  # noqa: F401
