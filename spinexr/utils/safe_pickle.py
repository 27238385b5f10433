"""Unpickling with an allow-list, for pickles that spinexr reads but did not write itself.

A pickle names importable globals and calls them while it is read (that is what ``__reduce__``
produces), so ``pickle.load`` of a crafted file runs any code the file asks for.
:class:`RestrictedUnpickler` resolves only the globals it is given and refuses every other one
before anything is called. Two kinds of entries:

* ``callables``: globals a pickle may name and call. Each is a harmless constructor (``set``,
  ``collections.OrderedDict``, ``torch.Size``, numpy's array/scalar rebuilders, torch's tensor
  rebuilders) or a stand-in that does only what the data needs (``_codecs.encode`` of latin-1
  text; ``torch.storage._load_from_bytes`` through ``torch.load(weights_only=True)``).
* ``restorable``: classes whose instances may be *restored* the way pickle restores any plain
  object, ``cls.__new__(cls)`` followed by setting its attributes from the file (this is how an
  ``nn.Module`` is pickled). Calling such a class (its constructor, which may read files or build
  anything) is refused.

:func:`load_predictions` reads dumped predictions (``tools/test.py --out``, mmengine's
``DumpResults``/mmdet's ``DumpDetResults``: containers, strings, numbers, numpy arrays and
scalars, torch tensors) with :data:`PREDICTION_GLOBALS`. :func:`restricted_pickle_module` gives
the same unpickler to ``torch.load(..., pickle_module=...)`` (used for Ultralytics ``.pt`` files
by :mod:`spinexr.engine.checkpoint`).
"""
import _compat_pickle
import collections
import functools
import io
import pickle
import types
from typing import Any, Callable, Dict, Mapping, Optional

import numpy as np
import torch

#: Resolves ``(module, name)`` to a class that may be restored (not called), or ``None``.
Restorable = Callable[[str, str], Optional[type]]


class _RestoreOnlyMeta(type):
    """Metaclass of the stand-ins that :class:`RestrictedUnpickler` returns for restorable
    classes: pickle's ``NEWOBJ`` (``cls.__new__(cls)``) works, calling the class is refused."""

    def __call__(cls, *args, **kwargs):
        raise pickle.UnpicklingError(
            f'refusing to call {cls.target_name}(...) while unpickling: this class may only be '
            'restored from its saved attributes, not constructed')


@functools.lru_cache(maxsize=None)
def _restore_only(cls: type) -> type:
    """A stand-in type whose ``__new__`` gives a bare instance of ``cls`` (no constructor)."""

    def __new__(_stand_in, *args, **kwargs):
        if args or kwargs:
            raise pickle.UnpicklingError(
                f'refusing {cls.__module__}.{cls.__qualname__}.__new__ with arguments')
        return cls.__new__(cls)

    return _RestoreOnlyMeta(f'RestoreOnly_{cls.__name__}', (),
                            dict(__new__=__new__,
                                 target_name=f'{cls.__module__}.{cls.__qualname__}'))


#: Objects whose state a pickle may set (``BUILD``) besides restored instances: never a class or
#: a function, whose attributes would change for the whole process.
STATE_TYPES = (np.ndarray, np.dtype, collections.OrderedDict, types.SimpleNamespace)


class RestrictedUnpickler(pickle._Unpickler):
    """Unpickler that resolves only allow-listed globals (see the module docstring).

    Built on pickle's pure-Python unpickler so that ``BUILD`` (setting an object's state) can be
    checked too: it is allowed only on instances of restored classes and of
    :data:`STATE_TYPES`. Subclasses set the class attributes (see
    :func:`restricted_pickle_module`); this base class allows no global.

    Attributes:
        callables (Mapping[str, Any]): ``'module.name'`` -> the object the pickle gets for it.
        restorable (Restorable | None): Classes that may be restored but not called.
        source (str): File name used in error messages.
        hint (str): Sentence appended to a refusal (how to opt in, what is allowed).
    """
    callables: Mapping[str, Any] = {}
    restorable: Optional[Restorable] = None
    source: str = '<pickle>'
    hint: str = ''
    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, **kwargs) -> None:
        super().__init__(file, **kwargs)
        self._restored: set = set()

    def load_build(self) -> None:
        """``BUILD``: set the state of the object on the stack, if it may have one set."""
        inst = self.stack[-2]  # the state is on top
        if type(inst) not in self._restored and not isinstance(inst, STATE_TYPES):
            raise pickle.UnpicklingError(
                f'{self.source}: refusing to set the state of {type(inst).__qualname__} '
                f'{inst!r:.60}: only restored objects may have their state set. {self.hint}'
                .rstrip())
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build

    def find_class(self, module: str, name: str) -> Any:
        """Return the allowed object for ``module.name``; refuse anything else."""
        # protocol <= 2 writes Python 2 names (``__builtin__.set``); map them as pickle does
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        key = f'{module}.{name}'
        if key in self.callables:
            return self.callables[key]
        cls = type(self).restorable(module, name) if type(self).restorable else None
        if cls is not None:
            self._restored.add(cls)
            return _restore_only(cls)
        raise pickle.UnpicklingError(
            f'{self.source}: refusing to unpickle the global {key!r}: it is not on the '
            f'allow-list, and unpickling it could run code. {self.hint}'.rstrip())

    def load(self) -> Any:
        """Unpickle; a refusal raised deeper (a call of a restorable class) names the file."""
        try:
            return super().load()
        except pickle.UnpicklingError as err:
            if str(err).startswith(self.source):
                raise
            raise pickle.UnpicklingError(f'{self.source}: {err}. {self.hint}'.rstrip()) from err


def restricted_pickle_module(callables: Mapping[str, Any],
                             restorable: Optional[Restorable] = None,
                             source: str = '<pickle>',
                             hint: str = '') -> types.SimpleNamespace:
    """A stand-in for the ``pickle`` module whose ``Unpickler``/``load`` are restricted.

    Pass it as ``torch.load(f, weights_only=False, pickle_module=...)``: torch then reads its
    own zip layout (tensor data never goes through pickle) and unpickles the rest with
    :class:`RestrictedUnpickler`.

    Args:
        callables (Mapping[str, Any]): Allowed globals, ``'module.name'`` -> object.
        restorable (Restorable, optional): Classes that may be restored, not called.
        source (str): File name for error messages.
        hint (str): Sentence appended to a refusal.

    Returns:
        types.SimpleNamespace: With ``Unpickler``, ``load`` and ``__name__``.
    """
    unpickler = type('SpinexrRestrictedUnpickler', (RestrictedUnpickler, ),
                     dict(callables=dict(callables), restorable=staticmethod(restorable)
                          if restorable else None, source=source, hint=hint))

    def load(file, **kwargs):
        return unpickler(file, **kwargs).load()

    return types.SimpleNamespace(__name__=__name__, Unpickler=unpickler, load=load)


def _latin1_encode(obj: object, encoding: str = 'utf-8') -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for ``bytes``: latin-1 text only."""
    if not isinstance(obj, str) or encoding != 'latin1':
        raise pickle.UnpicklingError(f'refusing _codecs.encode({type(obj).__name__}, '
                                     f'{encoding!r}): only latin1 text is decoded')
    return obj.encode('latin1')


def _load_storage_bytes(data: bytes) -> Any:
    """``torch.storage._load_from_bytes`` (a tensor pickled with plain ``pickle``), but read
    with ``weights_only=True`` instead of a second unrestricted unpickling."""
    return torch.load(io.BytesIO(data), weights_only=True)


def _named(objs) -> Dict[str, Any]:
    return {f'{o.__module__}.{o.__qualname__}': o for o in objs}


def numpy_callables() -> Dict[str, Any]:
    """numpy's scalar/array/dtype rebuilders, under numpy 2 and numpy 1 module names."""
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
        from numpy._core.numeric import _frombuffer
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar  # type: ignore
        from numpy.core.numeric import _frombuffer  # type: ignore
    dtypes = [type(np.dtype(t)) for t in (
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
        np.uint64, np.float16, np.float32, np.float64)]
    out = _named([np.ndarray, np.dtype, *dtypes])
    for mod in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        out.update({f'{mod}.scalar': scalar, f'{mod}._reconstruct': _reconstruct})
    for mod in ('numpy._core.numeric', 'numpy.core.numeric'):  # arrays under protocol 5
        out[f'{mod}._frombuffer'] = _frombuffer
    return out


def tensor_callables() -> Dict[str, Any]:
    """Containers and torch's tensor/parameter rebuilders (plain and ``torch.save`` pickles)."""
    from torch._utils import _rebuild_parameter, _rebuild_tensor_v2
    out = {
        'torch._utils._rebuild_tensor_v2': _rebuild_tensor_v2,
        'torch._utils._rebuild_parameter': _rebuild_parameter,
        'torch.storage._load_from_bytes': _load_storage_bytes,
        'torch.Size': torch.Size,
        'collections.OrderedDict': collections.OrderedDict,
        '_codecs.encode': _latin1_encode,
    }
    out.update({f'builtins.{t.__name__}': t for t in (set, frozenset, bytearray, complex, slice)})
    out.update({f'torch.{k}': v for k, v in vars(torch).items() if isinstance(v, torch.dtype)})
    return out


#: What a predictions pickle may contain: containers, numpy arrays/scalars, torch tensors.
PREDICTION_GLOBALS: Dict[str, Any] = {**numpy_callables(), **tensor_callables()}


def load_predictions(path: str) -> Any:
    """Read a predictions pickle (``tools/test.py --out``) without running code from it.

    Args:
        path (str): The ``.pkl`` file.

    Returns:
        Any: The unpickled object (mmdet's format: a list of dicts, one per image).

    Raises:
        pickle.UnpicklingError: The file names a global outside :data:`PREDICTION_GLOBALS`.
    """
    hint = ('A predictions file may hold only containers, strings, numbers, numpy arrays and '
            'torch tensors (spinexr.utils.safe_pickle.PREDICTION_GLOBALS).')
    with open(path, 'rb') as f:
        return restricted_pickle_module(PREDICTION_GLOBALS, source=path, hint=hint).load(f)
