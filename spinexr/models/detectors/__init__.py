"""Detectors: the YOLO11 adapter (Ultralytics' model behind mmengine's Runner)."""
from .yolo11 import YOLO11Detector

__all__ = ['YOLO11Detector']
