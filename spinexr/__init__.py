"""spinexr: lesion detection and classification on spine radiographs.

``import spinexr`` (what ``custom_imports = dict(imports=['spinexr'])`` in a config does) registers
spinexr's components into MMDetection's and MMPretrain's registries and does nothing else: it sets
no environment variables, thread counts or logging configuration. Ultralytics, which does set such
things when imported, is imported only when a YOLO11 model is built.

One exception, for environments beyond the verified stack: where transformers >= 4.52 is
installed, mmpretrain 1.2's multimodal models (which spinexr does not use) cannot be imported, and
``mmpretrain.models`` is told to skip them before anything imports it (see :mod:`spinexr._compat`).
"""
from ._compat import guard_mmpretrain_multimodal

guard_mmpretrain_multimodal()

from . import datasets, engine, evaluation, models  # noqa: E402,F401  (registration)

__version__ = '0.1.0'
