"""``SpinexrRunner``: mmengine's Runner with safe checkpoint loading and CPU multi-process support.

Select it in a config with ``runner_type = 'SpinexrRunner'`` (``configs/_base_/default_runtime.py``
does). It differs from :class:`mmengine.runner.Runner` in these places only:

* Every run gets a :class:`~spinexr.engine.hooks.ResumeStateHook` (unless the config lists one),
  which saves what mmengine's resume loses (random streams, mosaic caches, the batch resize's
  size, an unfinished accumulation window), so ``--resume`` continues the interrupted run.
* :meth:`load_checkpoint` (used by ``load_from`` and by ``--resume``) reads the file under
  :func:`spinexr.engine.checkpoint.mmengine_safe_globals`, so mmengine's own checkpoints load
  under torch >= 2.6 with ``weights_only=True`` kept on.
* ``load_from`` may name an Ultralytics ``.pt`` (e.g. ``yolo11l.pt``) when the model can take
  one (it has ``load_ultralytics_weights``, as ``YOLO11Detector`` does): matching tensors are
  transferred. Such a file is a pickled model: it is read without running code from it
  (:func:`spinexr.engine.checkpoint.load_ultralytics_checkpoint`) and refused if it holds
  anything outside the allow-list, unless the config sets ``trust_checkpoint = True``
  (``--trust-checkpoint``); only then is it unpickled in full. It cannot be resumed from.
* With a distributed launcher on a machine without CUDA, mmengine 0.10.7 would call
  ``torch.cuda.set_device`` and wrap the model with ``device_ids=[LOCAL_RANK]``, both of which fail
  on CPU. Here the process group is initialised with the ``gloo`` backend instead and the model is
  wrapped without ``device_ids``. On CUDA machines nothing changes.
* mmengine keeps one visualizer per name and process, and MMDetection's runtime names its
  visualizer ``'visualizer'``: a second Runner in the same process (tests, notebooks, a sweep)
  would get the first one's and write its scalars and config into the first run's log folder.
  :meth:`build_visualizer` gives a taken name this run's experiment name as a suffix.
* :meth:`build_optim_wrapper` tells a model that has an ``accumulation_gain`` attribute (the
  YOLO11 detector) by how much the built optimizer wrapper divides the loss while it accumulates
  gradients (:func:`spinexr.engine.optim.loss_divisor`: ``accumulative_counts`` for mmengine's
  ``OptimWrapper``, 1 for ``YOLOOptimWrapper``, which sums). The value is derived from the wrapper
  the run really uses, so it follows ``--cfg-options optim_wrapper.accumulative_counts=N`` and
  ``optim_wrapper.type=...``; no config copies it.
* :meth:`from_cfg` first resolves the config's ``{data_root}`` paths against its top-level
  ``data_root`` (:func:`spinexr.utils.data_root.resolve_data_root`), so
  ``--cfg-options data_root=DIR`` moves every dataset, evaluator and transform path.
"""
import copy
import os
import os.path as osp
from datetime import timedelta
from typing import Callable, Optional, Union

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.registry import RUNNERS, VISUALIZERS
from mmengine.runner import Runner
from mmengine.visualization import Visualizer

from ..utils.data_root import resolve_data_root
from .checkpoint import is_ultralytics_checkpoint, mmengine_safe_globals
from .hooks.resume_state import ResumeStateHook
from .optim.yolo_wrapper import loss_divisor


def _init_cpu_process_group(launcher: str, env_cfg: Optional[dict]) -> None:
    """Initialise a gloo process group for ``launcher='pytorch'`` on a machine without CUDA."""
    if launcher != 'pytorch' or torch.cuda.is_available() or torch_dist.is_initialized():
        return
    for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if var not in os.environ:
            raise RuntimeError(f'--launcher pytorch needs the environment variable {var}; '
                               'start the script with torchrun (tools/dist_train.sh).')
    timeout = ((env_cfg or {}).get('dist_cfg') or {}).get('timeout', 1800)
    torch_dist.init_process_group(backend='gloo', timeout=timedelta(seconds=timeout))


@RUNNERS.register_module()
class SpinexrRunner(Runner):
    """mmengine Runner that loads its checkpoints safely and trains multi-process on CPU.

    Takes exactly the arguments of :class:`mmengine.runner.Runner`.
    """

    def __init__(self, *args, **kwargs) -> None:
        launcher = kwargs.get('launcher', 'none')
        if launcher != 'none' and not torch.cuda.is_available():
            _init_cpu_process_group(launcher, kwargs.get('env_cfg'))
            # mmengine reads the wrapper from ``cfg.model_wrapper_cfg``.
            cfg = Config(copy.deepcopy(dict(kwargs.get('cfg') or {})))
            wrapper = cfg.get('model_wrapper_cfg') or dict(
                type='MMDistributedDataParallel', broadcast_buffers=False)
            wrapper.setdefault('device_ids', None)
            cfg.model_wrapper_cfg = wrapper
            kwargs['cfg'] = cfg
        super().__init__(*args, **kwargs)

    @classmethod
    def from_cfg(cls, cfg: Config) -> 'SpinexrRunner':
        """Build the runner from a copy of ``cfg`` whose ``{data_root}`` paths are resolved.

        Args:
            cfg (Config): A loaded config (not changed).

        Returns:
            SpinexrRunner: The runner; its ``cfg`` (dumped into the work dir) holds the resolved
            paths.
        """
        return super().from_cfg(resolve_data_root(copy.deepcopy(cfg)))

    def build_optim_wrapper(self, optim_wrapper: Union[OptimWrapper, dict]) -> OptimWrapper:
        """Build the optimizer wrapper, then set the model's ``accumulation_gain`` from it.

        Args:
            optim_wrapper (OptimWrapper | dict): As for :meth:`mmengine.runner.Runner.
                build_optim_wrapper`.

        Returns:
            OptimWrapper: The built wrapper.
        """
        wrapper = super().build_optim_wrapper(optim_wrapper)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        if hasattr(model, 'accumulation_gain'):
            model.accumulation_gain = float(loss_divisor(wrapper))
            if model.accumulation_gain != 1:
                self.logger.info(
                    f'{type(wrapper).__name__} divides the loss by accumulative_counts='
                    f'{model.accumulation_gain:g}: {type(model).__name__}.accumulation_gain = '
                    f'{model.accumulation_gain:g} undoes it (gradients summed over the window)')
                if getattr(model, 'loss_gain', 1) == model.accumulation_gain:
                    # the old advice was to copy accumulative_counts into loss_gain by hand
                    self.logger.warning(
                        f'loss_gain={model.loss_gain:g} equals accumulative_counts: the division '
                        'is now undone at run time, so the loss is scaled twice; set '
                        'model.loss_gain=1 unless that is meant')
        return wrapper

    def build_visualizer(self, visualizer: Optional[Union[Visualizer, dict]] = None) -> Visualizer:
        """Build this run's visualizer; a name another run already holds gets a suffix.

        Args:
            visualizer (Visualizer | dict, optional): As for :meth:`mmengine.runner.Runner.
                build_visualizer`.

        Returns:
            Visualizer: A visualizer that saves into this run's log folder.
        """
        if isinstance(visualizer, dict) and visualizer.get('name'):
            kind = visualizer.get('type', Visualizer)
            # look the type up the way mmengine's build_from_cfg will (default scope first)
            with VISUALIZERS.switch_scope_and_registry(visualizer.get('_scope_')) as registry:
                cls = kind if isinstance(kind, type) else registry.get(kind)
            if cls is not None and cls.check_instance_created(visualizer['name']):
                base = f"{visualizer['name']}_{self._experiment_name}"
                name, n = base, 1
                while cls.check_instance_created(name):
                    n += 1
                    name = f'{base}_{n}'
                visualizer['name'] = name
        return super().build_visualizer(visualizer)

    def register_custom_hooks(self, hooks) -> None:
        """Register the config's custom hooks, then a ``ResumeStateHook`` if none is among them.

        Args:
            hooks (list[Hook | dict]): The config's ``custom_hooks``.
        """
        super().register_custom_hooks(hooks)
        if not any(isinstance(h, ResumeStateHook) for h in self._hooks):
            self.register_hook(ResumeStateHook())

    def _ultralytics_target(self, filename: str):
        """The model, if ``filename`` is an Ultralytics ``.pt`` that it can load; else None."""
        model = self.model.module if is_model_wrapper(self.model) else self.model
        if (osp.isfile(filename) and hasattr(model, 'load_ultralytics_weights')
                and is_ultralytics_checkpoint(filename)):
            return model
        return None

    def resume(self, filename: str, *args, **kwargs) -> None:
        """Resume training; refuses an Ultralytics ``.pt``, which holds no training state."""
        if self._ultralytics_target(filename) is not None:
            raise ValueError(f'{filename} is an Ultralytics weights file, not a spinexr '
                             'checkpoint: use load_from to start from it, not --resume')
        super().resume(filename, *args, **kwargs)

    def load_checkpoint(self,
                        filename: str,
                        map_location: Union[str, Callable] = 'cpu',
                        strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]):
        """Load a checkpoint with :data:`spinexr.engine.checkpoint.ALLOWED_GLOBALS` allowed.

        An Ultralytics ``.pt`` goes to the model's ``load_ultralytics_weights`` instead, read with
        an allow-list, or in full if the config sets ``trust_checkpoint = True``.
        """
        model = self._ultralytics_target(filename)
        if model is not None:
            trust = bool(self.cfg.get('trust_checkpoint', False))
            if trust:
                self.logger.warning(f'{filename} is an Ultralytics .pt and trust_checkpoint is '
                                    "set: unpickling it in full with Ultralytics' loader")
            model.load_ultralytics_weights(filename, trust_checkpoint=trust)
            # Hooks see the loaded weights as a checkpoint of the model, as after mmengine's own
            # loading: the EMA hook copies them into its averaged model (it swaps that model in
            # for validation and testing, and made it before the weights were loaded).
            checkpoint = dict(meta=dict(), state_dict=model.state_dict())
            self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
            return checkpoint
        with mmengine_safe_globals():
            return super().load_checkpoint(
                filename, map_location=map_location, strict=strict, revise_keys=revise_keys)
