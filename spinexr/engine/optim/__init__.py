"""Optimizer constructors for the mmengine Runner (registered into mmdet's registries)."""
from .yolo_constructor import YOLOOptimWrapperConstructor, yolo_param_groups

__all__ = ['YOLOOptimWrapperConstructor', 'yolo_param_groups']
