"""spinexr: lesion detection and classification on spine radiographs.

``import spinexr`` (what ``custom_imports = dict(imports=['spinexr'])`` in a config does) registers
spinexr's components into MMDetection's and MMPretrain's registries and does nothing else: it sets
no environment variables, thread counts or logging configuration. Ultralytics, which does set such
things when imported, is imported only when a YOLO11 model is built.
"""
from . import datasets, engine, evaluation, models  # noqa: F401  (registration)

__version__ = '0.1.0'
