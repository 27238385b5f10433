"""EMA that updates once per optimizer step, as Ultralytics' ``ModelEMA`` does."""
from typing import Optional

from mmengine.hooks import EMAHook
from mmengine.hooks.hook import DATA_BATCH

from mmdet.registry import HOOKS


@HOOKS.register_module()
class YOLOEMAHook(EMAHook):
    """mmengine's :class:`~mmengine.hooks.EMAHook`, updated only on iterations that stepped the
    optimizer.

    Ultralytics updates its EMA after every optimizer step with
    ``d = decay * (1 - exp(-updates / tau))``, ``ema = d * ema + (1 - d) * model``. mmdet's
    ``ExpMomentumEMA(momentum=1 - decay, gamma=tau)`` applies the same formula (its weight on the
    averaged parameter is ``(1 - momentum) * (1 - exp(-(1 + steps) / gamma))``; the very first
    update copies instead of blending with ``d = 5e-4``), but mmengine's ``EMAHook`` calls it every
    iteration. With gradient accumulation (``accumulative_counts=4``) that would count four
    updates per optimizer step and blend the unchanged weights three times. This hook skips the
    iterations where the optimizer wrapper accumulated without stepping, so ``steps`` counts
    optimizer updates as ``ModelEMA.updates`` does. Without accumulation it equals ``EMAHook``.

    Use it with ``ema_type='YOLOModelEMA', momentum=0.0001, gamma=2000, update_buffers=True``
    for Ultralytics' ``decay=0.9999, tau=2000`` (Ultralytics also averages float buffers such as
    BN running statistics): :class:`spinexr.engine.ema.YOLOModelEMA` computes what
    ``ExpMomentumEMA`` does without its per-tensor device-to-host syncs.

    Args:
        **kwargs: Arguments of :class:`mmengine.hooks.EMAHook`.
    """

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        """Update the EMA if the optimizer stepped in this iteration."""
        wrapper = runner.optim_wrapper
        should_update = getattr(wrapper, 'should_update', None)
        if callable(should_update) and not should_update():
            return
        super().after_train_iter(runner, batch_idx, data_batch, outputs)
