"""Shared pieces of the registry contract: the registry walk and small builders.

:func:`registered` finds every registration of an object defined under ``spinexr.`` in mmengine's
registry tree; :func:`missing_cases` names the ones without a contract case; :func:`merge_cases`
joins the per-kind case tables (``_cases_data``, ``_cases_models``, ``_cases_engine``) into the
one table ``test_registry_contract.py`` runs. :func:`build`, :func:`packed` and
:class:`ToyModel` are what the cases of more than one kind build with.
"""
import importlib
import pkgutil
from typing import Callable, Dict, Iterable, List, NamedTuple, Tuple

import torch
from mmengine.registry import DefaultScope, Registry

#: Module prefix of the components under contract.
PREFIX = 'spinexr.'


class Entry(NamedTuple):
    """One registration: ``registry.get(name)`` is ``obj``."""
    scope: str  # the registry's scope: 'mmengine', 'mmdet', 'mmpretrain'
    kind: str  # the registry's name: 'transform', 'model', 'hook', ...
    name: str
    registry: Registry
    obj: object

    @property
    def id(self) -> str:
        return f"{self.scope}.{self.kind.replace(' ', '_')}.{self.name}"


def import_everything(package: str = 'spinexr') -> List[str]:
    """Import every module of ``package``, so every registration decorator has run.

    This covers ``import spinexr`` (what the configs' ``custom_imports`` do) and the modules it
    does not import itself (e.g. ``spinexr.apis``).
    """
    root = importlib.import_module(package)
    names = [package] + [m.name for m in pkgutil.walk_packages(root.__path__, f'{package}.')]
    for name in names:
        importlib.import_module(name)
    return names


def _tree(registry: Registry, seen: set) -> Iterable[Registry]:
    if id(registry) not in seen:
        seen.add(id(registry))
        yield registry
        for child in registry.children.values():
            yield from _tree(child, seen)


def registered(prefix: str = PREFIX) -> List[Entry]:
    """Registrations of objects defined under ``prefix``, in every registry of mmengine's tree
    (mmengine's root registries and their children: mmdet's, mmpretrain's, ...) and in any
    registry a ``spinexr`` module defines itself."""
    import sys

    import mmengine.registry as mm_registry
    modules = [mm_registry] + [m for n, m in list(sys.modules.items())
                               if n == PREFIX[:-1] or n.startswith(PREFIX)]
    roots = [v for m in modules for v in vars(m).values() if isinstance(v, Registry)]
    seen: set = set()
    found: Dict[Tuple[str, str, str], Entry] = {}
    for root in roots:
        for registry in _tree(root, seen):
            for name, obj in registry.module_dict.items():
                if str(getattr(obj, '__module__', '')).startswith(prefix):
                    found[(registry.scope, registry.name, name)] = Entry(
                        registry.scope, registry.name, name, registry, obj)
    return [found[k] for k in sorted(found)]


def missing_cases(entries: Iterable[Entry], cases: Dict[str, Callable]) -> List[str]:
    """One message per registration that has no case."""
    return [f'{e.id} ({e.obj.__module__}) is registered but has no contract case: add one to '
            f'CASES in the tests/contract/_cases_*.py module of its kind (data, models or '
            f'engine) under {e.name!r}'
            for e in entries if e.name not in cases]


def merge_cases(*tables: Dict[str, Callable]) -> Dict[str, Callable]:
    """Join case tables (registered name -> case); a name in two tables is an error."""
    merged: Dict[str, Callable] = {}
    for table in tables:
        twice = sorted(set(merged) & set(table))
        if twice:
            raise ValueError(f'contract cases defined twice: {twice}')
        merged.update(table)
    return merged


# ----------------------------------------------------------------------------------- builders
def build(entry: Entry, cfg: dict, **default_args):
    """Build ``cfg`` (its ``type`` is the entry's name) in the entry's registry and scope."""
    with DefaultScope.overwrite_default_scope(entry.scope):
        return entry.registry.build(dict(type=entry.name, **cfg),
                                    default_args=default_args or None)


def packed(seed: int = 0, size: int = 64) -> dict:
    """A packed detection sample (``PackDetInputs``' output) of ``size`` x ``size``."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(seed)
    sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                         scale_factor=(1.0, 1.0), img_id=seed))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[8., 10., 40., 50.]]),
                                       labels=torch.tensor([1]))
    return dict(inputs=torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8),
                data_samples=sample)


class ToyModel(torch.nn.Module):
    """Conv + BN + linear: weights, a BN layer and biases for the YOLO parameter groups."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4, 1)

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).mean((2, 3)))
