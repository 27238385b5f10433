"""Ultralytics' learning-rate / momentum schedule (warm-up with bias lr, cosine or linear decay)."""
import math
from typing import Optional

import numpy as np
from mmengine.hooks import Hook
from mmengine.hooks.hook import DATA_BATCH

from mmdet.registry import HOOKS


@HOOKS.register_module()
class YOLOParamSchedulerHook(Hook):
    """Set lr and momentum per iteration exactly as Ultralytics' ``BaseTrainer`` does.

    Epoch factor ``lf(e)``: cosine ``((1 - cos(e * pi / E)) / 2) * (lrf - 1) + 1`` or linear
    ``(1 - e / E) * (1 - lrf) + lrf``; lr of epoch ``e`` = initial lr x ``lf(e)``. During the first
    ``nw = round(min(warmup_epochs, E - 1) * iters_per_epoch)`` iterations every group's lr is
    interpolated from 0 (``bias`` group: from ``warmup_bias_lr``) to its epoch lr, and momentum from
    ``warmup_momentum`` to the optimizer's momentum. The groups are named by
    :class:`~spinexr.engine.optim.YOLOOptimWrapperConstructor` (``param_group`` key).

    Use it instead of mmengine param schedulers (``param_scheduler = None``). lr and momentum are
    functions of ``runner.iter`` and ``runner.epoch`` and of the initial values, which are stored in
    the parameter groups (and so in the checkpoint), so ``--resume`` continues the schedule.

    Gradient accumulation: with :class:`~spinexr.engine.optim.YOLOOptimWrapper` (or its AMP
    variant) the hook also ramps the accumulation count during the warm-up, from 1 to the
    wrapper's nominal ``accumulative_counts``, as Ultralytics does
    (:meth:`~spinexr.engine.optim.YOLOAccumulationMixin.ramp_accumulation`). With mmengine's own
    wrappers the count stays fixed.

    Args:
        lrf (float): Final lr as a fraction of the initial lr. Defaults to 0.01.
        cos_lr (bool): Cosine (True) or linear (False) decay. Defaults to True.
        warmup_epochs (float): Warm-up epochs. Defaults to 3.0.
        warmup_momentum (float): Momentum at the start of warm-up. Defaults to 0.8.
        warmup_bias_lr (float): Bias lr at the start of warm-up. Defaults to 0.1.
        accumulation_ramp (bool): Ramp the accumulation count of a wrapper that supports it
            during the warm-up (Ultralytics' behaviour). Defaults to True.
    """

    # before RuntimeInfoHook (VERY_HIGH), so the logged lr is the one used in the iteration
    priority = 'HIGHEST'

    def __init__(self,
                 lrf: float = 0.01,
                 cos_lr: bool = True,
                 warmup_epochs: float = 3.0,
                 warmup_momentum: float = 0.8,
                 warmup_bias_lr: float = 0.1,
                 accumulation_ramp: bool = True) -> None:
        self.lrf = float(lrf)
        self.cos_lr = bool(cos_lr)
        self.warmup_epochs = float(warmup_epochs)
        self.warmup_momentum = float(warmup_momentum)
        self.warmup_bias_lr = float(warmup_bias_lr)
        self.accumulation_ramp = bool(accumulation_ramp)
        self._initial = None

    def lf(self, epoch: int, max_epochs: int) -> float:
        """Epoch factor of the initial lr."""
        if self.cos_lr:
            return ((1 - math.cos(epoch * math.pi / max_epochs)) / 2) * (self.lrf - 1) + 1
        return max(1 - epoch / max_epochs, 0) * (1.0 - self.lrf) + self.lrf

    def before_train(self, runner) -> None:
        """Record each group's initial lr and momentum.

        Both are kept in the parameter group (``initial_lr``, ``initial_momentum``), so they are
        saved with the optimizer: after ``--resume`` the groups hold the lr and momentum of the
        last warm-up iteration, not the configured ones.
        """
        groups = runner.optim_wrapper.optimizer.param_groups
        self._initial = []
        for g in groups:
            lr0 = g.setdefault('initial_lr', g['lr'])
            momentum = g.get('momentum')
            if momentum is not None:
                momentum = g.setdefault('initial_momentum', momentum)
            self._initial.append((lr0, momentum))

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        """Set lr and momentum of every parameter group for this iteration."""
        if self._initial is None:
            self.before_train(runner)
        max_epochs = runner.max_epochs
        nb = len(runner.train_dataloader)
        nw = round(min(self.warmup_epochs, max(max_epochs - 1, 0)) * nb)
        ni, epoch = runner.iter, runner.epoch
        ramp = getattr(runner.optim_wrapper, 'ramp_accumulation', None)
        if self.accumulation_ramp and callable(ramp):
            ramp(ni, nw)
        factor = self.lf(epoch, max_epochs)
        for group, (lr0, momentum) in zip(runner.optim_wrapper.optimizer.param_groups,
                                          self._initial):
            target = lr0 * factor
            if nw and ni <= nw:
                start = self.warmup_bias_lr if group.get('param_group') == 'bias' else 0.0
                group['lr'] = float(np.interp(ni, [0, nw], [start, target]))
                if momentum is not None:
                    group['momentum'] = float(
                        np.interp(ni, [0, nw], [self.warmup_momentum, momentum]))
            else:
                group['lr'] = target
                if momentum is not None:
                    group['momentum'] = momentum
