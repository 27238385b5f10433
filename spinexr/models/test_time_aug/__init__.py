"""Test-time augmentation for every detector: views merged by box fusion (WBF, NMS, soft-NMS)."""
from .fusion_tta import FusionTTAModel
from .tta_config import DEFAULT_TTA, build_tta_pipeline, enable_tta

__all__ = ['FusionTTAModel', 'DEFAULT_TTA', 'build_tta_pipeline', 'enable_tta']
