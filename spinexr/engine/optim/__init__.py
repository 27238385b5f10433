"""Optimizer constructors and wrappers for the mmengine Runner (registered into mmdet's registries)."""
from .yolo_constructor import YOLOOptimWrapperConstructor, yolo_param_groups
from .yolo_wrapper import (YOLOAccumulationMixin, YOLOAmpOptimWrapper, YOLOOptimWrapper,
                           loss_divisor)

__all__ = [
    'YOLOOptimWrapperConstructor', 'yolo_param_groups', 'YOLOAccumulationMixin',
    'YOLOAmpOptimWrapper', 'YOLOOptimWrapper', 'loss_divisor'
]
