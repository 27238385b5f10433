"""Hooks the Runner needs that mmengine/mmdet lack."""
from .resume_state import ResumeStateHook
from .yolo_ema import YOLOEMAHook
from .yolo_param_scheduler import YOLOParamSchedulerHook

__all__ = ['ResumeStateHook', 'YOLOEMAHook', 'YOLOParamSchedulerHook']
