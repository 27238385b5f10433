"""Ultralytics' gradient accumulation for mmengine's optimizer wrappers.

Ultralytics' trainer accumulates differently from mmengine's :class:`~mmengine.optim.OptimWrapper`:

* it **sums** the gradients of the accumulated iterations (the loss is not divided by the
  accumulation count; mmengine divides it);
* it steps when ``ni - last_opt_step >= accumulate`` (``ni`` the global iteration), so a window may
  span an epoch end and an incomplete window at the end of training is not stepped (mmengine steps
  every ``accumulative_counts`` iterations counted from 0 and forces a step at the last one);
* during warm-up ``accumulate`` grows from 1 to its nominal value (``nbs / batch``):
  ``max(1, round(interp(ni, [0, nw], [1, nominal])))``.

:class:`YOLOOptimWrapper` and :class:`YOLOAmpOptimWrapper` (``tools/train.py --amp`` turns the first
into the second) do all three. The ramp is driven by
:class:`~spinexr.engine.hooks.YOLOParamSchedulerHook`, which knows the warm-up length and calls
:meth:`YOLOAccumulationMixin.ramp_accumulation` every iteration, as Ultralytics sets lr, momentum and
``accumulate`` in the same place. The iteration of the last step is saved with the optimizer state,
so ``--resume`` continues an open window (its gradients are restored by
:class:`~spinexr.engine.hooks.ResumeStateHook`).

The gradient norm that clipping computes is logged (``train/grad_norm``) without waiting for the
device: it is copied to the host asynchronously and logged at the next step (mmengine reads it
back with ``float()`` right away, one device-to-host sync per step that Ultralytics does not have).
The logged value therefore lags by one optimizer step.

Because the gradients are summed, the YOLO11 detector needs nothing to undo mmengine's division.
With a plain ``OptimWrapper`` and ``accumulative_counts > 1`` the loss is divided;
:class:`~spinexr.engine.SpinexrRunner` then sets the detector's ``accumulation_gain`` to
:func:`loss_divisor` of the built wrapper, so the summed gradient (and lr 0.01) means what it means
in Ultralytics whichever wrapper and count the run ends up with (``--cfg-options`` included).
"""
from typing import Optional

import numpy as np
import torch
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from torch import Tensor, nn

from mmdet.registry import OPTIM_WRAPPERS

#: Key of the accumulation state inside the optimizer wrapper's state dict.
STATE_KEY = 'ultralytics_accumulation'


def loss_divisor(optim_wrapper) -> int:
    """The number an optimizer wrapper divides each iteration's loss by while it accumulates.

    mmengine's :class:`~mmengine.optim.OptimWrapper` (and ``AmpOptimWrapper``) divide by
    ``accumulative_counts`` (the last, shorter window of a run by its length: that remainder is
    not undone here); :class:`YOLOAccumulationMixin` wrappers sum the gradients and divide by
    nothing. Wrappers without a single count (``OptimWrapperDict``) count as 1.

    Args:
        optim_wrapper (mmengine.optim.OptimWrapper): A built optimizer wrapper.

    Returns:
        int: ``accumulative_counts`` of a dividing wrapper, else 1.
    """
    if isinstance(optim_wrapper, YOLOAccumulationMixin) or not isinstance(optim_wrapper,
                                                                          OptimWrapper):
        return 1
    return int(getattr(optim_wrapper, '_accumulative_counts', 1))


class YOLOAccumulationMixin:
    """Ultralytics' accumulation rule on top of an mmengine optimizer wrapper (see the module).

    Attributes:
        nominal_accumulate (int): The configured ``accumulative_counts`` (Ultralytics'
            ``round(nbs / batch)``), capped at the run's iterations once training starts.
        accumulate (int): The count in force for the current iteration.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.nominal_accumulate = int(self._accumulative_counts)
        self.accumulate = self.nominal_accumulate
        self._last_step: Optional[int] = None
        self._pending_norm: Optional[Tensor] = None  # last step's gradient norm, on its way
        self._pending_event = None

    # -------------------------------------------------------------- the rule
    def ramp_accumulation(self, cur_iter: int, warmup_iters: int) -> int:
        """Set :attr:`accumulate` for iteration ``cur_iter`` as Ultralytics does.

        Args:
            cur_iter (int): Global iteration about to run (0-based).
            warmup_iters (int): Warm-up length ``nw`` in iterations (0: no ramp).

        Returns:
            int: The accumulation count in force for this iteration.
        """
        if warmup_iters and cur_iter <= warmup_iters:
            self.accumulate = max(
                1, int(np.interp(cur_iter, [0, warmup_iters], [1, self.nominal_accumulate]).round()))
        elif not warmup_iters:
            self.accumulate = self.nominal_accumulate
        # after the warm-up the count stays where the ramp left it (the nominal value), as there
        return self.accumulate

    def initialize_count_status(self, model: nn.Module, init_counts: int, max_counts: int) -> None:
        """Start counting at ``init_counts``; cap the nominal count at ``max_counts``.

        A fresh run starts as Ultralytics' does (``last_opt_step = -1``); a resumed one keeps the
        last step read from the checkpoint.

        Args:
            model (nn.Module): The trained model (unused; mmengine's interface).
            init_counts (int): Iterations already run.
            max_counts (int): Iterations of the whole run.
        """
        self._inner_count = init_counts
        self._max_counts = max_counts
        if max_counts > 0:
            self.nominal_accumulate = max(1, min(self.nominal_accumulate, max_counts))
        if self._last_step is None:
            self._last_step = init_counts - 1

    def scale_loss(self, loss: Tensor) -> Tensor:
        """Return the loss unchanged: accumulated gradients are summed, as in Ultralytics."""
        return loss

    def should_update(self) -> bool:
        """Whether the iteration just back-propagated steps (or has stepped) the optimizer.

        Still True after the step, so hooks that run after the iteration (the EMA) can ask.
        """
        last = self._last_step_or_start()
        return self._inner_count - 1 == last or (self._inner_count - 1) - last >= self.accumulate

    def should_sync(self) -> bool:
        """Whether the coming backward ends a window (DDP then all-reduces the gradients)."""
        return self._inner_count - self._last_step_or_start() >= self.accumulate

    def step(self, **kwargs) -> None:
        """Step the optimizer (clipping first, as the base wrapper does); remember the iteration."""
        super().step(**kwargs)
        self._last_step = self._inner_count - 1

    def _clip_grad(self) -> None:
        """Clip as mmengine does; log the norm of the previous step (no device sync here)."""
        params = [p for group in self.optimizer.param_groups for p in group['params']
                  if p.requires_grad and p.grad is not None]
        if not params:
            return
        norm = self.clip_func(params, **self.clip_grad_kwargs)
        if norm is None:  # clip_grad_value_ returns nothing
            return
        self.flush_grad_norm()
        norm = norm.detach()
        if norm.is_cuda:
            self._pending_norm = norm.to('cpu', non_blocking=True)
            self._pending_event = torch.cuda.Event()
            self._pending_event.record()
        else:
            self._pending_norm = norm

    def flush_grad_norm(self) -> None:
        """Log the pending gradient norm (waits only for its copy, long finished by then)."""
        if self._pending_norm is None:
            return
        if self._pending_event is not None:
            self._pending_event.synchronize()
        self.message_hub.update_scalar('train/grad_norm', float(self._pending_norm))
        self._pending_norm, self._pending_event = None, None

    def has_pending_gradients(self) -> bool:
        """Whether gradients of back-propagated iterations wait for a step."""
        return self._inner_count - 1 > self._last_step_or_start()

    def _last_step_or_start(self) -> int:
        # without initialize_count_status (e.g. a bare wrapper): counting started at iteration 0
        return -1 if self._last_step is None else self._last_step

    # -------------------------------------------------------------- state
    def state_dict(self) -> dict:
        """The base wrapper's state plus the iteration of the last step."""
        state = super().state_dict()
        state[STATE_KEY] = dict(last_step=self._last_step)
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """Load the base wrapper's state and the iteration of the last step (if saved)."""
        state_dict = dict(state_dict)
        extra = state_dict.pop(STATE_KEY, None)
        super().load_state_dict(state_dict)
        if extra is not None and extra.get('last_step') is not None:
            self._last_step = int(extra['last_step'])


@OPTIM_WRAPPERS.register_module()
class YOLOOptimWrapper(YOLOAccumulationMixin, OptimWrapper):
    """:class:`~mmengine.optim.OptimWrapper` with Ultralytics' gradient accumulation.

    Args:
        optimizer (torch.optim.Optimizer): The optimizer.
        accumulative_counts (int): Nominal accumulation count (Ultralytics'
            ``round(nbs / batch)``). Defaults to 1.
        clip_grad (dict, optional): As in ``OptimWrapper``, e.g. ``dict(max_norm=10.0)``.
    """

    def __init__(self, optimizer, accumulative_counts: int = 1,
                 clip_grad: Optional[dict] = None) -> None:
        super().__init__(optimizer=optimizer, accumulative_counts=accumulative_counts,
                         clip_grad=clip_grad)


@OPTIM_WRAPPERS.register_module()
class YOLOAmpOptimWrapper(YOLOAccumulationMixin, AmpOptimWrapper):
    """:class:`~mmengine.optim.AmpOptimWrapper` with Ultralytics' gradient accumulation.

    Args:
        optimizer (torch.optim.Optimizer): The optimizer.
        accumulative_counts (int): Nominal accumulation count. Defaults to 1.
        clip_grad (dict, optional): As in ``OptimWrapper`` (gradients are unscaled first).
        loss_scale (str | float | dict): As in ``AmpOptimWrapper``. Defaults to ``'dynamic'``.
        dtype (str, optional): Autocast dtype (``'float16'`` / ``'bfloat16'``). Defaults to None
            (float16).
    """

    def __init__(self, optimizer, accumulative_counts: int = 1, clip_grad: Optional[dict] = None,
                 loss_scale='dynamic', dtype: Optional[str] = None) -> None:
        super().__init__(optimizer=optimizer, accumulative_counts=accumulative_counts,
                         clip_grad=clip_grad, loss_scale=loss_scale, dtype=dtype)
