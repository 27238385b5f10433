"""Where spinexr's shipped configs live, found through the installed package.

The configs travel inside the package as ``spinexr/.mim/configs`` (the layout mmdet and mmpretrain
use, so mmengine's ``spinexr::yolo11/...`` scope syntax finds them in a regular install). In a
checkout that folder is a symbolic link to the repository's ``configs/``; building a wheel copies
the files, so ``pip install .`` (not editable) carries them and nothing looks for a checkout.
"""
import os.path as osp
from pathlib import Path
from typing import Union

import spinexr

#: Prefixes a shipped config name may carry: ``configs/x/y.py`` (as written in a checkout and in
#: the docs) and ``spinexr::x/y.py`` (mmengine's package scope) both mean ``x/y.py``.
_PREFIXES = ('spinexr::', 'configs/', './configs/')


def config_dir() -> Path:
    """Return the folder of the shipped configs inside the installed package.

    Returns:
        Path: ``<package>/.mim/configs``.

    Raises:
        FileNotFoundError: When the package was installed without its configs.
    """
    path = Path(spinexr.__file__).resolve().parent / '.mim' / 'configs'
    if not path.is_dir():
        raise FileNotFoundError(
            f'spinexr: no shipped configs at {path}; the package was installed without them '
            '(reinstall with `pip install .` from a checkout, or pass config file paths)')
    return path


def config_path(name: Union[str, Path]) -> str:
    """Resolve a config name to a file path.

    An existing file path is returned unchanged (a user's own config wins). Otherwise ``name`` is
    read as a shipped config, with or without a ``configs/`` or ``spinexr::`` prefix.

    Args:
        name (str | Path): A file path, or a shipped config such as
            ``'configs/yolo11/yolo11n_35e_vindr-640.py'``, ``'yolo11/yolo11n_35e_vindr-640.py'`` or
            ``'spinexr::yolo11/yolo11n_35e_vindr-640.py'``.

    Returns:
        str: The path of an existing config file.

    Raises:
        FileNotFoundError: When ``name`` is neither a file nor a shipped config.
    """
    name = str(name)
    if osp.isfile(name):
        return name
    rel = name
    for prefix in _PREFIXES:
        if rel.startswith(prefix):
            rel = rel[len(prefix):]
            break
    candidate = config_dir() / rel
    if candidate.is_file():
        return str(candidate)
    raise FileNotFoundError(f'config {name!r}: no such file, and no shipped config '
                            f'{rel!r} under {config_dir()}')
