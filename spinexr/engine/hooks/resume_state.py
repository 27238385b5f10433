"""Save what mmengine's ``--resume`` loses, so that a resumed epoch-based run continues exactly."""
import random
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.runner import EpochBasedTrainLoop

from mmdet.registry import HOOKS

from ...datasets.transforms.state import load_pipeline_state, pipeline_state

#: Key of the state in the checkpoint dict.
CHECKPOINT_KEY = 'resume_state'
STATE_VERSION = 1


def get_rng_state() -> Dict[str, Any]:
    """The global random streams: Python's ``random``, numpy's legacy ``np.random``, torch (CPU and
    every CUDA device), as tensors and numbers only (loadable with ``weights_only=True``)."""
    np_state = np.random.get_state(legacy=False)
    state = dict(
        python=random.getstate(),
        numpy=dict(np_state, state=dict(key=torch.from_numpy(np_state['state']['key'].astype(
            np.int64)), pos=int(np_state['state']['pos']))),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Set the global random streams to what :func:`get_rng_state` returned."""
    random.setstate(state['python'])
    np_state = dict(state['numpy'])
    np_state['state'] = dict(key=np_state['state']['key'].numpy().astype(np.uint32),
                             pos=np_state['state']['pos'])
    np.random.set_state(np_state)
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available() and \
            len(state['cuda']) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state['cuda'])


def _samplers(loader) -> List[object]:
    """The train dataloader's sampler(s) that carry a ``seed`` (mmengine's and spinexr's)."""
    found = [getattr(loader, 'sampler', None),
             getattr(getattr(loader, 'batch_sampler', None), 'sampler', None)]
    return [s for s in found if isinstance(getattr(s, 'seed', None), int)]


def _pipeline_dataset(dataset) -> Optional[object]:
    """The (possibly wrapped) dataset that owns the pipeline, or None."""
    while dataset is not None:
        if hasattr(getattr(dataset, 'pipeline', None), 'transforms'):
            return dataset
        dataset = getattr(dataset, 'dataset', None)
    return None


def _model(runner) -> torch.nn.Module:
    return runner.model.module if is_model_wrapper(runner.model) else runner.model


@HOOKS.register_module()
class ResumeStateHook(Hook):
    """Make ``--resume`` from an epoch-end checkpoint continue the run it interrupted.

    mmengine restores the weights, optimizer, schedulers, message hub and the sampler's epoch, but
    not the state below; without it a resumed run draws other augmentations than the run it
    continues (e.g. the YOLO11 recipe's mosaics) and takes a different first optimizer step. This
    hook writes it into the checkpoint (key ``resume_state``) and puts it back on resume:

    * the global random streams (``random``, ``np.random``, torch CPU and CUDA) at the end of the
      epoch. Every epoch of a run (resumed or not) starts from the streams as the previous
      training epoch left them, so validation and checkpointing between epochs do not shift the
      training randomness;
    * the sampler's ``seed`` (drawn at random when ``randomness.seed`` is unset);
    * the cross-sample state of the training pipeline: the ``CachedMosaic`` / ``CachedMixUp``
      caches and transforms' own generators (:mod:`spinexr.datasets.transforms.state`);
    * the current size of batch augments that keep one (mmdet's ``BatchSyncRandomResize`` picks
      the next batch's size at the end of an iteration);
    * the gradients of an unfinished accumulation window (``accumulative_counts`` > 1 and an
      epoch length not divisible by it), which mmengine drops with a warning.

    With it a resumed run reproduces the uninterrupted one bitwise on CPU with
    ``randomness.deterministic=True`` and ``num_workers=0``. Limits: with dataloader workers the
    transforms run in the workers, whose random streams and caches are not reachable (a resumed
    run restarts them from their seeds); in multi-process training only rank 0's state is saved,
    so the random streams, pipeline caches and pending gradients are not restored there (the
    sampler seed and batch-resize size are); checkpoints saved inside an epoch carry no state
    (mmengine restarts that epoch anyway).
    :class:`~spinexr.engine.SpinexrRunner` registers this hook in every run.
    """

    # before CheckpointHook (VERY_LOW) at the end of an epoch
    priority = 'HIGH'

    def __init__(self) -> None:
        self._rng: Optional[Dict[str, Any]] = None
        self._rng_iter: Optional[int] = None

    def before_train_epoch(self, runner) -> None:
        """Start the epoch from the random streams the previous training epoch ended with."""
        if self._rng is not None:
            set_rng_state(self._rng)

    def after_train_epoch(self, runner) -> None:
        """Remember the random streams at the end of the epoch (before validation)."""
        self._rng = get_rng_state()
        self._rng_iter = runner.iter

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Add the state to an epoch-end checkpoint."""
        loop = getattr(runner, '_train_loop', None)  # the property would build one
        if not isinstance(loop, EpochBasedTrainLoop) or self._rng_iter != runner.iter:
            return
        loader = runner.train_dataloader
        owner = _pipeline_dataset(loader.dataset)
        state = dict(
            version=STATE_VERSION,
            world_size=get_world_size(),
            rng=self._rng,
            sampler_seeds=[s.seed for s in _samplers(loader)],
            pipeline=pipeline_state(owner.pipeline.transforms) if owner is not None else None,
            batch_sizes={
                name: None if m._input_size is None else [int(v) for v in m._input_size]
                for name, m in _model(runner).named_modules() if hasattr(m, '_input_size')
            })
        if not _has_pending_gradients(runner.optim_wrapper):
            state['pending_grads'] = None
        else:
            state['pending_grads'] = {
                name: p.grad.detach().cpu().clone()
                for name, p in _model(runner).named_parameters() if p.grad is not None}
        checkpoint[CHECKPOINT_KEY] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Put the state back when resuming (not for ``load_from``)."""
        if not getattr(runner, '_resume', False):
            return
        state = checkpoint.get(CHECKPOINT_KEY)
        if state is None:
            if not isinstance(getattr(runner, '_train_loop', None), EpochBasedTrainLoop):
                return  # an iteration-based loop replays the skipped batches instead
            runner.logger.warning(
                'The checkpoint holds no resume_state (saved inside an epoch, or by an older '
                'spinexr): the resumed run does not continue the interrupted run exactly '
                '(other augmentation draws; see ResumeStateHook)')
            return
        if state.get('version') != STATE_VERSION:
            raise ValueError(f"resume_state version {state.get('version')} in the checkpoint; "
                             f'this spinexr reads version {STATE_VERSION}')
        single = state['world_size'] == 1 and get_world_size() == 1
        if single:
            self._rng = state['rng']
        else:
            runner.logger.warning('Multi-process run: the random streams, pipeline caches and the '
                                  'gradients of an unfinished accumulation window are not restored '
                                  "(the checkpoint holds rank 0's only)")
        loader = runner.train_dataloader
        samplers = _samplers(loader)
        if len(samplers) == len(state['sampler_seeds']):
            for sampler, seed in zip(samplers, state['sampler_seeds']):
                sampler.seed = int(seed)
        owner = _pipeline_dataset(loader.dataset)
        if single and owner is not None and state['pipeline'] is not None:
            try:
                load_pipeline_state(owner.pipeline.transforms, state['pipeline'], owner)
            except ValueError as err:  # e.g. the config's pipeline was changed for the resume
                runner.logger.warning(f'{err}: the pipeline caches start empty')
        modules = dict(_model(runner).named_modules())
        for name, size in state['batch_sizes'].items():
            if name in modules and hasattr(modules[name], '_input_size'):
                modules[name]._input_size = None if size is None else tuple(size)
        grads = state.get('pending_grads')
        if grads and single:
            for name, p in _model(runner).named_parameters():
                if name in grads:
                    p.grad = grads[name].to(device=p.device, dtype=p.dtype)
            runner.logger.info(
                f'Restored the gradients of the unfinished accumulation window ({len(grads)} '
                'tensors): the warning that they are lost does not apply')


def _has_pending_gradients(wrapper) -> bool:
    """Whether back-propagated gradients wait for an optimizer step (an open window)."""
    if not isinstance(wrapper, OptimWrapper):
        return False
    pending = getattr(wrapper, 'has_pending_gradients', None)
    if callable(pending):  # spinexr's YOLO wrappers (Ultralytics' rule)
        return bool(pending())
    return wrapper._inner_count % wrapper._accumulative_counts != 0
