"""Data preprocessors."""
from .yolo import YOLODetDataPreprocessor, pack_yolo_targets

__all__ = ['YOLODetDataPreprocessor', 'pack_yolo_targets']
