"""Hooks the Runner needs that mmengine/mmdet lack."""
from .yolo_ema import YOLOEMAHook
from .yolo_param_scheduler import YOLOParamSchedulerHook

__all__ = ['YOLOEMAHook', 'YOLOParamSchedulerHook']
