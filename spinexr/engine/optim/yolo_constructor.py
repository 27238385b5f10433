"""Ultralytics' optimizer parameter groups for the mmengine Runner."""
from typing import Dict, List, Optional

from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from torch import nn

from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS


def yolo_param_groups(model: nn.Module) -> Dict[str, List[nn.Parameter]]:
    """Split parameters the way Ultralytics' ``BaseTrainer.build_optimizer`` does.

    ``bias``: every parameter whose name contains ``'bias'``; ``bn``: weights of normalisation
    layers (any ``torch.nn`` class with ``Norm`` in its name); ``weight``: everything else.

    Args:
        model (nn.Module): The model.

    Returns:
        dict[str, list[nn.Parameter]]: ``weight``, ``bn`` and ``bias`` parameters.
    """
    norm_types = tuple(v for k, v in nn.__dict__.items() if 'Norm' in k and isinstance(v, type))
    groups: Dict[str, List[nn.Parameter]] = dict(weight=[], bn=[], bias=[])
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            fullname = f'{module_name}.{param_name}' if module_name else param_name
            if 'bias' in fullname:
                groups['bias'].append(param)
            elif isinstance(module, norm_types):
                groups['bn'].append(param)
            else:
                groups['weight'].append(param)
    return groups


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class YOLOOptimWrapperConstructor:
    """Build an optimizer with Ultralytics' three parameter groups.

    Groups, in this order: ``weight`` (with the configured ``weight_decay``), ``bn`` (normalisation
    weights, no decay) and ``bias`` (no decay). Each group carries ``param_group`` set to its name,
    as in Ultralytics, so :class:`~spinexr.engine.hooks.YOLOParamSchedulerHook` can run the bias
    warm-up (bias lr falls from ``warmup_bias_lr`` to lr while the others rise from 0).

    Example:
        >>> optim_wrapper = dict(
        ...     type='OptimWrapper', constructor='YOLOOptimWrapperConstructor',
        ...     optimizer=dict(type='SGD', lr=0.01, momentum=0.9, nesterov=True,
        ...                    weight_decay=5e-4))

    Args:
        optim_wrapper_cfg (dict): The ``optim_wrapper`` config (``optimizer`` inside).
        paramwise_cfg (dict, optional): Not supported (must be empty): the groups are fixed.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None) -> None:
        if paramwise_cfg:
            raise ValueError('YOLOOptimWrapperConstructor uses Ultralytics\' fixed parameter '
                             f'groups; remove paramwise_cfg={paramwise_cfg}')
        self.optim_wrapper_cfg = dict(optim_wrapper_cfg)
        self.optimizer_cfg = dict(self.optim_wrapper_cfg.pop('optimizer'))

    def __call__(self, model: nn.Module) -> OptimWrapper:
        """Build the optimizer wrapper for ``model``."""
        if is_model_wrapper(model):
            model = model.module
        optimizer_cfg = dict(self.optimizer_cfg)
        decay = optimizer_cfg.pop('weight_decay', 0.0)
        groups = yolo_param_groups(model)
        optimizer_cfg['params'] = [
            dict(params=groups['weight'], weight_decay=decay, param_group='weight'),
            dict(params=groups['bn'], weight_decay=0.0, param_group='bn'),
            dict(params=groups['bias'], weight_decay=0.0, param_group='bias'),
        ]
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        wrapper_cfg = dict(self.optim_wrapper_cfg)
        wrapper_cfg.setdefault('type', 'OptimWrapper')
        return OPTIM_WRAPPERS.build(wrapper_cfg, default_args=dict(optimizer=optimizer))
