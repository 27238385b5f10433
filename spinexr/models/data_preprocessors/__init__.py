"""Data preprocessors and batch augmentations (registered into mmdet's MODELS)."""
from .batch_resize import YOLOBatchSyncRandomResize
from .yolo import YOLO_PAD_VALUE, YOLODetDataPreprocessor

__all__ = ['YOLO_PAD_VALUE', 'YOLOBatchSyncRandomResize', 'YOLODetDataPreprocessor']
