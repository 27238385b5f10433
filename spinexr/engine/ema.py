"""Ultralytics' EMA schedule without a device-to-host sync: :class:`YOLOModelEMA`.

mmdet's ``ExpMomentumEMA`` computes the same average, but mmengine's
``BaseAveragedModel.update_parameters`` tests ``self.steps == 0`` and ``self.steps % interval``
on a tensor, and ``ExpMomentumEMA.avg_func`` calls ``float(1 + steps)`` once per tensor: on CUDA
each is a device-to-host sync (about 1,000 per optimizer step for YOLO11-l with its BN
buffers), on top of a Python loop of two kernels per tensor and a ``model.state_dict()``
rebuilt on every update. :class:`YOLOModelEMA` keeps the step count on the host, computes the
momentum once per update and blends all floating tensors with one ``torch._foreach_lerp_``.
"""
import math
import operator
import weakref
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.model import BaseAveragedModel
from torch import Tensor, nn

from mmdet.registry import MODELS

# Where a tensor lives: the ``_parameters`` or ``_buffers`` dict of its module, and its name there.
_Slot = Tuple[Dict[str, Optional[Tensor]], str]


def _slot(module: nn.Module, key: str) -> _Slot:
    """The owner dict and name of the parameter or buffer ``key`` of ``module``.

    Args:
        module (nn.Module): The model.
        key (str): A dotted name as in ``module.state_dict()``.

    Returns:
        tuple: ``(owner dict, name)``; ``owner[name]`` is the tensor now held under ``key``.
    """
    prefix, _, name = key.rpartition('.')
    owner = module.get_submodule(prefix) if prefix else module
    if name in owner._parameters:
        return owner._parameters, name
    if name in owner._buffers:
        return owner._buffers, name
    raise KeyError(f'YOLOModelEMA: {key!r} is neither a parameter nor a buffer of '
                   f'{type(owner).__name__} in the source model; the averaged and the source '
                   'model must have the same structure')


class _Cache:
    """Where :class:`YOLOModelEMA` finds the averaged and the source tensors of one model.

    Args:
        model (nn.Module): The source model (held by a weak reference).
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = weakref.ref(model)
        self.floating: Tuple[List[_Slot], List[_Slot]] = ([], [])  # averaged
        self.other: Tuple[List[_Slot], List[_Slot]] = ([], [])  # copied on the first update
        self.buffers: Tuple[List[_Slot], List[_Slot]] = ([], [])  # copied (update_buffers=False)
        self.seen: Optional[Tuple[List[Tensor], List[Tensor]]] = None
        self.convert = False

    def tensors(self, slots: Tuple[List[_Slot], List[_Slot]],
                check: bool = False) -> Tuple[List[Tensor], List[Tensor]]:
        """The averaged and the source tensors now held in ``slots``.

        Args:
            slots (tuple): ``(averaged slots, source slots)``.
            check (bool): Convert sources only if a device or dtype differs, checked again only
                when a tensor object changed (the floating slots); otherwise always
                ``.to()`` (a no-op for matching tensors).

        Returns:
            tuple: Lists of averaged tensors and of source tensors on their devices and dtypes.
        """
        avg = [owner[name] for owner, name in slots[0]]
        src = [owner[name] for owner, name in slots[1]]
        if check:
            if (self.seen is None or any(map(operator.is_not, src, self.seen[1]))
                    or any(map(operator.is_not, avg, self.seen[0]))):
                self.seen = avg, src  # tensors (re)placed: check devices and dtypes again
                self.convert = any(a.device != s.device or a.dtype != s.dtype
                                   for a, s in zip(avg, src))
            if not self.convert:
                return avg, src
        return avg, [s.to(device=a.device, dtype=a.dtype) for a, s in zip(avg, src)]


@MODELS.register_module()
class YOLOModelEMA(BaseAveragedModel):
    """Exponential moving average with Ultralytics' warm-up, free of device-to-host syncs.

    Each update blends every averaged tensor ``e`` with the source tensor ``x`` as
    ``e = (1 - m) * e + m * x`` with ``m = (1 - momentum) * exp(-(1 + steps) / gamma) + momentum``,
    exactly mmdet's ``ExpMomentumEMA`` (the first update, ``steps == 0``, copies). With
    ``momentum = 1 - decay`` and ``gamma = tau`` this is Ultralytics'
    ``ModelEMA(decay, tau)``: its ``d = decay * (1 - exp(-updates / tau))`` equals ``1 - m`` with
    ``updates = steps + 1`` (Ultralytics increments before use), so after ``k`` updates both
    have counted ``k``. The one difference is the first update: Ultralytics blends with
    ``d(1) = decay * (1 - exp(-1 / tau))`` (about 5.0e-4 for 0.9999 / 2000) of the copy it took
    at construction, this class (like mmengine) copies the model.

    What is averaged: with ``update_buffers=True`` the floating entries of ``state_dict()``
    (parameters and persistent buffers such as BN running statistics), as Ultralytics does;
    non-floating entries (``num_batches_tracked``) are copied on the first update and then left
    alone, as mmengine does (Ultralytics never copies them: they keep their value from
    construction). With ``update_buffers=False`` only parameters are averaged and every buffer
    is copied from the model on each update, as in mmengine. A tensor shared under two names is
    updated once (mmengine and Ultralytics would blend it twice).

    No device-to-host sync: the step count is a host-side ``int`` mirrored into the ``steps``
    buffer on each update (an asynchronous ``fill_``), so checkpoints hold it; loading a state
    dict restores the mirror from the buffer (one sync at load time), so ``--resume`` continues
    the count. The tensors are looked up on each update through their modules' parameter and
    buffer dicts (cheap), so a parameter or buffer object replaced after construction (for
    example a buffer after ``model.to(device)``) is followed; a submodule replaced by another
    module is not. Source tensors on another device or of another dtype than the average are
    converted (as mmengine's ``.to(device)``; a GPU-to-CPU copy then syncs, inherently); this is
    checked again whenever a tensor object changed. A parameter moved in place (``.data``
    replaced, as ``model.to()`` does with parameters) keeps its object: if that moves it to
    another device than the average, the ``_foreach`` op raises a device-mismatch error.

    Args:
        model (nn.Module): The model to be averaged.
        momentum (float): Final weight of the model in the blend, ``1 - decay``.
            Defaults to 0.0001 (Ultralytics' ``decay=0.9999``).
        gamma (float): Warm-up time constant in updates (Ultralytics' ``tau``). Defaults to 2000.
        interval (int): Blend on every ``interval``-th update (counted from 0, as mmengine
            does; the others only count). Defaults to 1.
        device (torch.device, optional): Where the averaged copy is kept. Defaults to None (the
            model's device).
        update_buffers (bool): Average floating buffers too. Defaults to True.

    Example:
        >>> ema = YOLOModelEMA(model, momentum=0.0001, gamma=2000)
        >>> ema.update_parameters(model)  # after each optimizer step
    """

    def __init__(self,
                 model: nn.Module,
                 momentum: float = 0.0001,
                 gamma: float = 2000,
                 interval: int = 1,
                 device: Optional[torch.device] = None,
                 update_buffers: bool = True) -> None:
        if not 0.0 < momentum < 1.0:
            raise ValueError(f'YOLOModelEMA: momentum must lie in (0, 1), got {momentum}')
        if not gamma > 0:
            raise ValueError(f'YOLOModelEMA: gamma must be > 0, got {gamma}')
        if not (isinstance(interval, int) and interval >= 1):
            raise ValueError(f'YOLOModelEMA: interval must be an int >= 1, got {interval!r}')
        super().__init__(model, interval, device, update_buffers)
        self.momentum = float(momentum)
        self.gamma = float(gamma)
        self._step_count = 0  # host mirror of the ``steps`` buffer
        self._cache: Optional[_Cache] = None  # built on the first update

    def __getstate__(self) -> dict:
        """Pickle/deepcopy without the lookup cache (it refers into the source model)."""
        state = super().__getstate__()
        state['_cache'] = None
        return state

    def avg_func(self, averaged_param: Tensor, source_param: Tensor, steps: int) -> None:
        """Blend one tensor in place (the per-tensor form of :meth:`update_parameters`).

        Args:
            averaged_param (Tensor): The averaged tensor, updated in place.
            source_param (Tensor): The model's tensor.
            steps (int): The number of updates so far (a host ``int``).
        """
        averaged_param.lerp_(source_param, self.weight(int(steps)))

    def weight(self, steps: int) -> float:
        """Weight of the model in the blend at update number ``steps`` (0-based).

        Args:
            steps (int): Updates before this one.

        Returns:
            float: ``(1 - momentum) * exp(-(1 + steps) / gamma) + momentum``.
        """
        return (1 - self.momentum) * math.exp(-float(1 + steps) / self.gamma) + self.momentum

    @property
    def step_count(self) -> int:
        """int: The number of updates so far, read without a sync."""
        return self._step_count

    def _build_cache(self, model: nn.Module) -> '_Cache':
        """Map the averaged tensors to the model's, by name, once per source model."""
        if self.update_buffers:
            named = list(self.module.state_dict(keep_vars=True).items())
        else:
            named = list(self.module.named_parameters())
        cache = _Cache(model)
        seen = set()
        for key, tensor in named:
            if id(tensor) in seen:  # tied weights: one update per tensor
                continue
            seen.add(id(tensor))
            avg_slots, src_slots = cache.floating if tensor.is_floating_point() else cache.other
            avg_slots.append(_slot(self.module, key))
            src_slots.append(_slot(model, key))
        if not self.update_buffers:
            keys = [k for k, _ in self.module.named_buffers()]
            cache.buffers = ([_slot(self.module, k) for k in keys], [_slot(model, k) for k in keys])
        self._cache = cache
        return cache

    def update_parameters(self, model: nn.Module) -> None:
        """Blend the model into the average; launches kernels only, never waits for the device.

        Args:
            model (nn.Module): The model being trained (unwrapped, as ``EMAHook`` passes it).
        """
        cache = self._cache
        if cache is None or cache.model() is not model:
            cache = self._build_cache(model)
        steps = self._step_count
        with torch.no_grad():
            if steps == 0 or steps % self.interval == 0:
                avg, src = cache.tensors(cache.floating, check=True)
                if steps == 0:
                    if avg:
                        torch._foreach_copy_(avg, src)
                    for a, s in zip(*cache.tensors(cache.other)):  # num_batches_tracked
                        a.copy_(s)
                elif avg:
                    torch._foreach_lerp_(avg, src, self.weight(steps))
            if not self.update_buffers:
                for a, s in zip(*cache.tensors(cache.buffers)):
                    a.copy_(s)
            self._step_count = steps + 1
            self.steps.fill_(self._step_count)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        """Load as ``nn.Module`` does, then read the step count back into the host mirror."""
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        self._step_count = int(self.steps)  # one sync, at load time only
