"""Hooks the Runner needs that mmengine/mmdet lack."""
from .close_mosaic import CloseMosaicHook
from .resume_state import ResumeStateHook
from .yolo_ema import YOLOEMAHook
from .yolo_param_scheduler import YOLOParamSchedulerHook

__all__ = ['CloseMosaicHook', 'ResumeStateHook', 'YOLOEMAHook', 'YOLOParamSchedulerHook']
