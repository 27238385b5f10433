"""Loading mmengine checkpoints under torch >= 2.6 without switching off ``weights_only``.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``: it unpickles only tensors,
containers and an allow-list of globals. mmengine 0.10.7 calls ``torch.load`` without
``weights_only`` and writes numpy scalars/arrays (log values, ``meta``) and its own
:class:`~mmengine.logging.HistoryBuffer` (in the message hub) into every checkpoint, so its own
``--resume`` and ``load_from`` fail with ``Unsupported global: numpy._core.multiarray.scalar``.

This module is the single place that says which extra types a checkpoint may contain:
:data:`ALLOWED_GLOBALS` is exactly the set of types mmengine's Runner and hooks write. Loading
happens under :func:`torch.serialization.safe_globals`, so everything else stays refused; a
checkpoint that carries any other pickled object fails with torch's ``UnpicklingError``. Nothing
is changed globally: the allow-list applies only inside :func:`mmengine_safe_globals`.

An Ultralytics ``.pt`` is a pickled model (``DetectionModel`` and its layers), which
``weights_only=True`` cannot read. :func:`load_ultralytics_checkpoint` reads it with
:class:`spinexr.utils.safe_pickle.RestrictedUnpickler`: the ``nn.Module`` classes of
``torch.nn.modules.*``, ``ultralytics.nn.modules.*`` and ``ultralytics.nn.tasks`` (and the
classes of ``ultralytics.utils.loss``/``tal``) are *restored* from their saved attributes without
running any constructor, plus tensors, containers, numpy scalars/arrays, ``IterableSimpleNamespace`` and
paths (:data:`ULTRALYTICS_GLOBALS`); every other global is refused. Only with
``trust_checkpoint=True`` (``--trust-checkpoint``) is the file unpickled in full by Ultralytics'
own ``torch_safe_load``, which can run any code the file holds.
"""
import contextlib
import pathlib
import pickle
import sys
import types
from typing import Any, Callable, Dict, Iterator, List, Optional, Union

import numpy as np
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model

from spinexr.utils.safe_pickle import PREDICTION_GLOBALS, restricted_pickle_module

#: How to opt in to unpickling a file in full; part of every refusal of an Ultralytics ``.pt``.
TRUST_HINT = (
    'If you trust this file (you made it, or it comes unaltered from Ultralytics), opt in with '
    '--trust-checkpoint (tools/train.py, tools/test.py), which sets the config keys '
    'trust_checkpoint=True (load_from) and model.trust_checkpoint=True (YOLO11Detector '
    "pretrained): the file is then unpickled in full by Ultralytics' loader, which runs any code "
    'it holds.')


def _numpy_globals() -> List[object]:
    """Numpy types that appear when mmengine pickles numpy scalars and arrays.

    ``np.float64(0.5)`` pickles as ``numpy._core.multiarray.scalar(dtype, bytes)``, an array as
    ``numpy._core.multiarray._reconstruct(ndarray, shape, dtype)``; a dtype pickles as its class in
    ``numpy.dtypes`` (numpy >= 1.25) plus ``numpy.dtype``.
    """
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar  # type: ignore
    dtype_classes = [type(np.dtype(t)) for t in (
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
        np.uint64, np.float16, np.float32, np.float64)]
    return [scalar, _reconstruct, np.ndarray, np.dtype, *dtype_classes]


def _history_buffer_getattr(obj: object, name: str) -> object:
    """Stand-in for ``builtins.getattr`` while unpickling: only ``HistoryBuffer.<statistic>``.

    A :class:`HistoryBuffer` pickles its registered statistics methods (``min``, ``max``,
    ``current``, ``mean``, and any added with ``register_statistics``) as
    ``getattr(HistoryBuffer, 'min')``. Allowing the real ``getattr`` would let a crafted file reach
    any attribute of any allowed type (e.g. ``numpy.ndarray.tofile``), so this version resolves
    those lookups and refuses everything else.
    """
    allowed = {'min', 'max', 'current', 'mean', *HistoryBuffer._statistics_methods}
    if obj is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'refusing getattr({obj!r}, {name!r}) in a checkpoint: only HistoryBuffer statistics '
        'methods may be looked up (spinexr.engine.checkpoint)')


#: The extra globals an mmengine 0.10.7 checkpoint is allowed to contain (a ``(callable, name)``
#: pair stands in for the global ``name``).
ALLOWED_GLOBALS: List[object] = [
    *_numpy_globals(), HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr')
]


@contextlib.contextmanager
def mmengine_safe_globals() -> Iterator[None]:
    """Allow-list :data:`ALLOWED_GLOBALS` for ``torch.load(weights_only=True)`` in this block.

    Example:
        >>> with mmengine_safe_globals():
        ...     ckpt = torch.load('epoch_1.pth', map_location='cpu')
    """
    with torch.serialization.safe_globals(ALLOWED_GLOBALS):
        yield


def load_checkpoint_dict(filename: str,
                         map_location: Optional[Union[str, Callable]] = 'cpu') -> dict:
    """Read an mmengine checkpoint file with the allow-list in force.

    Args:
        filename (str): Local path (or any prefix mmengine's CheckpointLoader knows).
        map_location (str | Callable | None): As for :func:`torch.load`.

    Returns:
        dict: The checkpoint (``state_dict``, ``meta``, ``optimizer``, ``message_hub``, ...).

    Raises:
        pickle.UnpicklingError: The file holds a pickled object outside the allow-list.
    """
    with mmengine_safe_globals():
        return _load_checkpoint(filename, map_location=map_location)


def load_checkpoint(model: nn.Module,
                    filename: str,
                    map_location: Optional[Union[str, Callable]] = 'cpu',
                    strict: bool = False,
                    revise_keys: list = [(r'^module\.', '')]) -> dict:
    """:func:`mmengine.runner.load_checkpoint` with the allow-list in force.

    Args:
        model (nn.Module): Model to load the weights into.
        filename (str): Checkpoint path.
        map_location (str | Callable | None): As for :func:`torch.load`.
        strict (bool): Whether the keys must match exactly.
        revise_keys (list): ``(pattern, replacement)`` pairs applied to the state-dict keys.

    Returns:
        dict: The loaded checkpoint.
    """
    checkpoint = load_checkpoint_dict(filename, map_location=map_location)
    return _load_checkpoint_to_model(model, checkpoint, strict=strict, revise_keys=revise_keys)


def is_ultralytics_checkpoint(filename: str) -> bool:
    """Whether ``filename`` is an Ultralytics ``.pt`` (a pickled ``ultralytics`` model).

    Looks at the globals the pickle names, without unpickling anything.

    Args:
        filename (str): Local checkpoint path.

    Returns:
        bool: ``True`` if the file references classes of the ``ultralytics`` package.
    """
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
    except Exception:  # not a torch zip/pickle file: let the regular loader report it
        return False
    return any(name.startswith('ultralytics.') for name in names)


def _ultralytics_restorable(module: str, name: str) -> Optional[type]:
    """The class ``module.name`` if an Ultralytics ``.pt`` may restore it (never call it).

    Only modules that are already imported are looked at (nothing is imported on a file's
    behalf), and only classes defined in them under that name: ``nn.Module`` subclasses of
    ``torch.nn.modules.*``, ``ultralytics.nn.modules.*`` and ``ultralytics.nn.tasks``; any class
    of ``ultralytics.utils.loss`` / ``ultralytics.utils.tal`` (a training criterion).
    """
    mod = sys.modules.get(module)
    if mod is None or not name.isidentifier():
        return None
    obj = vars(mod).get(name)
    if not isinstance(obj, type) or obj.__module__ != module:
        return None
    if module in ('ultralytics.utils.loss', 'ultralytics.utils.tal'):
        return obj
    if (module == 'ultralytics.nn.tasks'
            or module.startswith(('torch.nn.modules.', 'ultralytics.nn.modules.'))):
        return obj if issubclass(obj, nn.Module) else None
    return None


def _ultralytics_globals() -> Dict[str, Any]:
    """:data:`ULTRALYTICS_GLOBALS`: built on first use (it needs ``ultralytics`` imported)."""
    from ultralytics.utils import IterableSimpleNamespace
    local_path = type(pathlib.Path())
    out = dict(PREDICTION_GLOBALS)
    for key in ('ultralytics.utils.IterableSimpleNamespace',
                'ultralytics.yolo.utils.IterableSimpleNamespace'):  # before Ultralytics 8.0.44
        out[key] = IterableSimpleNamespace
    out['types.SimpleNamespace'] = types.SimpleNamespace
    for mod in ('pathlib', 'pathlib._local'):  # Python 3.13 pickles paths under pathlib._local
        out.update({f'{mod}.PosixPath': local_path, f'{mod}.WindowsPath': local_path})
    return out


#: Globals an Ultralytics ``.pt`` may call besides restoring module classes (filled on first
#: use of :func:`load_ultralytics_checkpoint`).
ULTRALYTICS_GLOBALS: Dict[str, Any] = {}


def load_ultralytics_checkpoint(filename: str, trust_checkpoint: bool = False) -> dict:
    """Read an Ultralytics ``.pt`` without running code from it, unless it is trusted.

    Args:
        filename (str): Local ``.pt`` path.
        trust_checkpoint (bool): Unpickle the file in full with Ultralytics' ``torch_safe_load``
            (runs any code the file holds). Defaults to False: the restricted reading described
            in the module docstring.

    Returns:
        dict: The checkpoint (``'ema'`` / ``'model'`` hold the ``DetectionModel``).

    Raises:
        pickle.UnpicklingError: The file names a global outside the allow-list (the message
            says how to opt in).
    """
    import ultralytics.nn.tasks  # noqa: F401  (imports the module classes that may be restored)
    if trust_checkpoint:
        from ultralytics.nn.tasks import torch_safe_load
        return torch_safe_load(filename, safe_only=False)[0]
    if not ULTRALYTICS_GLOBALS:
        ULTRALYTICS_GLOBALS.update(_ultralytics_globals())
    module = restricted_pickle_module(ULTRALYTICS_GLOBALS, restorable=_ultralytics_restorable,
                                      source=filename, hint=TRUST_HINT)
    return torch.load(filename, map_location='cpu', weights_only=False, pickle_module=module)
