"""Detectors: the YOLO11 and RT-DETR adapters (Ultralytics' models behind mmengine's Runner)."""
from .rtdetr import RTDETRDetector
from .ultralytics_base import UltralyticsDetector
from .yolo11 import YOLO11Detector

__all__ = ['RTDETRDetector', 'UltralyticsDetector', 'YOLO11Detector']
