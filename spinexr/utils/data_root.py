"""The dataset root of a config: one top-level key, resolved when the config is run.

mmengine runs a Python config file when it parses it, so a base that wrote
``dataset=dict(data_root=data_root)`` copied the *string* into every dataset dict at parse time;
``--cfg-options data_root=/data/vindr/`` then changed the top-level key and nothing else. spinexr's
configs therefore write every path under the dataset root with a placeholder::

    data_root = 'data/vindr_spinexr/'                    # the one place the root is given
    train_dataloader = dict(dataset=dict(data_root='{data_root}', ann_file='annotations/train.json'))
    val_evaluator = dict(type='CocoMetric', ann_file='{data_root}/annotations/test.json')
    copy_paste = dict(type='BoxCopyPaste', data_root='{data_root}', ann_file='annotations/train.json')

and :func:`resolve_data_root` replaces ``{data_root}`` in every string of the config (datasets,
evaluators, transforms, hooks' pipelines, anything else) with the value of the top-level
``data_root`` at run time. :class:`spinexr.engine.SpinexrRunner` calls it in ``from_cfg`` (so
``tools/train.py``, ``tools/test.py`` and everything that builds the runner from a config get it),
and so does package code that reads dataset paths outside the runner (the comparison table, the
ablation, the cross-validation folds). Move the data with any of::

    --cfg-options data_root=/data/vindr/      # tools/train.py, tools/test.py, ...
    --data-root /data/vindr/                  # tools/train.py, tools/test.py
    cfg.data_root = '/data/vindr/'            # Python, before building the runner

Paths written literally (no placeholder) are left alone: a config may still pin one dataset
elsewhere (``train_dataloader.dataset.data_root=...`` overrides that one dataset only).
Code that builds datasets from a spinexr config without the runner must call
:func:`resolve_data_root` first; an unresolved ``{data_root}`` reaching a dataset shows up as a
missing ``{data_root}/...`` file, and :class:`spinexr.datasets.transforms.BoxCopyPaste` refuses it
with a message naming this module.
"""
import re
from typing import Any, List, Optional

#: The placeholder for the top-level ``data_root`` inside path strings of a config.
PLACEHOLDER = '{data_root}'
#: The top-level key that holds the dataset root.
KEY = 'data_root'

_PATTERN = re.compile(re.escape(PLACEHOLDER) + r'(/+)?')


def substitute(value: str, data_root: str) -> str:
    """Replace every ``{data_root}`` in ``value`` by ``data_root``.

    ``'{data_root}'`` becomes ``data_root`` as given; ``'{data_root}/x'`` becomes ``data_root``
    without trailing slashes, one ``/`` and ``x``, so a root with or without a trailing slash
    gives the same path. An empty root means the current folder: ``'{data_root}/x'`` -> ``'x'``.

    Args:
        value (str): A string that may hold the placeholder.
        data_root (str): The dataset root.

    Returns:
        str: ``value`` with the placeholder replaced.
    """
    def repl(match: 're.Match') -> str:
        if not match.group(1):
            return data_root
        head = data_root.rstrip('/')
        if head:
            return head + '/'
        return '/' if data_root.startswith('/') else ''

    return _PATTERN.sub(repl, value)


def find_placeholders(node: Any, prefix: str = '') -> List[str]:
    """Dotted key paths of every string under ``node`` that still holds ``{data_root}``.

    Args:
        node: A config, dict, list, tuple or value.
        prefix (str): Key path of ``node`` (for the messages).

    Returns:
        list[str]: Key paths, e.g. ``['train_dataloader.dataset.data_root']``.
    """
    if isinstance(node, str):
        return [prefix or '<value>'] if PLACEHOLDER in node else []
    items = _children(node)
    found: List[str] = []
    for key, child in items:
        found += find_placeholders(child, f'{prefix}.{key}' if prefix else str(key))
    return found


def _children(node: Any) -> list:
    """``(key, value)`` pairs of a mapping or sequence (of a Config, its top-level keys)."""
    if hasattr(node, '_cfg_dict'):  # mmengine Config
        node = node._cfg_dict
    if isinstance(node, dict):
        return list(node.items())
    if isinstance(node, (list, tuple)):
        return list(enumerate(node))
    return []


def _resolve(node: Any, data_root: str) -> Any:
    """``node`` with every placeholder replaced; dicts and lists are changed in place."""
    if isinstance(node, str):
        return substitute(node, data_root) if PLACEHOLDER in node else node
    if isinstance(node, dict):
        for key, child in list(node.items()):
            new = _resolve(child, data_root)
            if new is not child:
                node[key] = new
        return node
    if isinstance(node, list):
        for i, child in enumerate(node):
            new = _resolve(child, data_root)
            if new is not child:
                node[i] = new
        return node
    if isinstance(node, tuple):
        new_items = [_resolve(child, data_root) for child in node]
        if all(a is b for a, b in zip(new_items, node)):
            return node
        return type(node)(*new_items) if hasattr(node, '_fields') else type(node)(new_items)
    return node


def resolve_data_root(cfg: Any, data_root: Optional[str] = None) -> Any:
    """Point every ``{data_root}`` path of ``cfg`` at the config's top-level ``data_root``.

    Changes ``cfg`` in place (and returns it). Idempotent: a resolved config has no placeholder
    left, so a second call changes nothing.

    Args:
        cfg (mmengine.Config | dict): A loaded config.
        data_root (str, optional): If given, it first becomes ``cfg.data_root`` (what
            ``--data-root DIR`` and ``--cfg-options data_root=DIR`` do).

    Returns:
        mmengine.Config | dict: ``cfg``.

    Raises:
        TypeError: If the top-level ``data_root`` is not a string.
        ValueError: If the config holds placeholders but no top-level ``data_root``, or the
            top-level ``data_root`` itself holds the placeholder.
    """
    if data_root is not None:
        cfg[KEY] = str(data_root)
    where = getattr(cfg, 'filename', None) or 'the config'
    root = cfg.get(KEY, None)
    if root is None:
        left = find_placeholders(cfg)
        if left:
            raise ValueError(
                f'{where}: {", ".join(left[:5])} use {PLACEHOLDER} but the config has no '
                f'top-level {KEY}; set one (--cfg-options {KEY}=DIR, or --data-root DIR)')
        return cfg
    if not isinstance(root, str):
        raise TypeError(f'{where}: {KEY} must be a path string, got {type(root).__name__} '
                        f'{root!r}')
    if PLACEHOLDER in root:
        raise ValueError(f'{where}: {KEY} must be a path, not the placeholder itself ({root!r})')
    for key, child in _children(cfg):
        if key == KEY:
            continue
        new = _resolve(child, root)
        if new is not child:
            cfg[key] = new
    return cfg


def set_data_root(cfg: Any, data_root: str) -> Any:
    """What ``--data-root DIR`` does: ``cfg.data_root = DIR``, resolved later by the runner.

    Refuses a config that has no ``{data_root}`` path, where the option would change nothing.

    Args:
        cfg (mmengine.Config | dict): A loaded (unresolved) config.
        data_root (str): The dataset root.

    Returns:
        mmengine.Config | dict: ``cfg``.

    Raises:
        ValueError: If no string of ``cfg`` holds ``{data_root}``.
    """
    if not find_placeholders(cfg):
        where = getattr(cfg, 'filename', None) or 'the config'
        raise ValueError(
            f'--data-root: {where} has no path written with {PLACEHOLDER}, so the dataset root '
            'would not move; write its dataset/evaluator paths as in '
            'configs/_base_/datasets/vindr_spinexr_detection.py, or set them one by one with '
            '--cfg-options')
    cfg[KEY] = str(data_root)
    return cfg


def check_resolved(value: str, name: str, owner: str) -> str:
    """Refuse a path that still holds ``{data_root}`` (the config was not resolved).

    Args:
        value (str): The path.
        name (str): The argument it was given as, e.g. ``'ann_file'``.
        owner (str): Who received it, e.g. ``'BoxCopyPaste'``.

    Returns:
        str: ``value``, when it holds no placeholder.

    Raises:
        ValueError: If ``value`` holds the placeholder.
    """
    if isinstance(value, str) and PLACEHOLDER in value:
        raise ValueError(
            f'{owner}: {name}={value!r} still holds the {PLACEHOLDER} placeholder: the config was '
            'not resolved. Build it through SpinexrRunner (runner_type=\'SpinexrRunner\'), or call '
            'spinexr.utils.data_root.resolve_data_root(cfg) before building from it.')
    return value
