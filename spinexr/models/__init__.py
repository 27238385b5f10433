"""Models: the YOLO11 adapter, its data preprocessor, losses, classifiers, test-time augmentation."""
from . import classifiers, data_preprocessors, detectors, heads, losses, test_time_aug  # noqa: F401
