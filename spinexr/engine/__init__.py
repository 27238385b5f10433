"""Engine pieces mmengine/mmdet lack: safe checkpoint loading, the Runner, hooks."""
from .checkpoint import (ALLOWED_GLOBALS, load_checkpoint, load_checkpoint_dict,
                         mmengine_safe_globals)
from . import hooks  # noqa: F401  (registration)
from .ema import YOLOModelEMA
from . import optim  # noqa: F401  (registration)
from .runner import SpinexrRunner

__all__ = [
    'ALLOWED_GLOBALS', 'load_checkpoint', 'load_checkpoint_dict', 'mmengine_safe_globals',
    'SpinexrRunner', 'YOLOModelEMA'
]
