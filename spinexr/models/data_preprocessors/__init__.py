"""Data preprocessors (registered into mmdet's MODELS)."""
from .yolo import YOLO_PAD_VALUE, YOLODetDataPreprocessor

__all__ = ['YOLO_PAD_VALUE', 'YOLODetDataPreprocessor']
