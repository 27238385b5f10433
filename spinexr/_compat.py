"""Keep ``import spinexr`` working beside packages newer than the verified stack.

MMPretrain 1.2.0 decides once, when ``mmpretrain.utils.dependency`` is imported, whether to import
its multimodal models (BLIP, BLIP-2, CLIP, Flamingo, LLaVA, MiniGPT-4, OFA, Otter, RAM, ...): it
sets ``WITH_MULTIMODAL`` when ``pycocotools`` and ``transformers>=4.28.0`` are installed, with no
upper bound. ``mmpretrain.models`` then imports them, and that import fails from transformers 4.52
on (found by trying releases, mmpretrain 1.2.0 alone; 4.51.3 and older import):

- 4.52 to 4.55: ``ImportError: cannot import name 'GenerationMixin' from
  'transformers.modeling_utils'`` (OFA);
- 4.56, 4.57 and 5.x: ``TypeError: NoneType takes no arguments`` at ``class
  BertPreTrainedModel(PreTrainedModel)`` in ``mmpretrain/models/multimodal/blip/language_model.py``
  (line 123): a name BLIP imports from ``transformers.modeling_utils`` is gone (in 5.x
  ``find_pruneable_heads_and_indices``, ``apply_chunking_to_forward`` and ``prune_linear_layer``),
  so BLIP's guarded import leaves ``PreTrainedModel = None``.

Every import of an ``mmpretrain.models`` submodule runs ``mmpretrain/models/__init__.py``, and
mmpretrain's registries import ``mmpretrain.models`` to build any model, so importing only the
submodules spinexr needs cannot avoid it (nor can mmdet: ``import mmdet.models`` imports
``mmpretrain.models`` too, for its ReID data preprocessor).

:func:`guard_mmpretrain_multimodal` supplies the missing upper bound: where transformers >= 4.52 is
installed and ``mmpretrain.models`` is not imported yet, it clears that flag, so mmpretrain takes
its own branch for a missing dependency (it registers placeholders that raise ``ImportError`` when
a multimodal model is built). spinexr uses none of those models; mmpretrain's backbones, necks,
heads, losses and classifiers are unaffected. transformers itself is neither imported nor changed.
"""
import sys
from importlib import metadata
from typing import Optional

from packaging.version import InvalidVersion, Version

#: First transformers release (major, minor) beside which mmpretrain 1.2's multimodal models fail to
#: import (4.51.3 was the last that worked).
FIRST_BREAKING_TRANSFORMERS = (4, 52)


def installed_version(package: str) -> Optional[str]:
    """Version of an installed distribution, read from its metadata (nothing is imported).

    Args:
        package (str): Distribution name, e.g. ``'transformers'``.

    Returns:
        Optional[str]: The version string, or ``None`` when it is not installed.
    """
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def multimodal_breaks(transformers_version: Optional[str]) -> bool:
    """Whether mmpretrain 1.2's multimodal models fail to import beside this transformers.

    Args:
        transformers_version (Optional[str]): Installed transformers version, ``None`` if absent.

    Returns:
        bool: True for transformers >= 4.52 (its pre-releases included); False when transformers is
        absent, older or its version cannot be parsed (mmpretrain's own decision then stands).
    """
    if transformers_version is None:
        return False
    try:
        return Version(transformers_version).release[:2] >= FIRST_BREAKING_TRANSFORMERS
    except InvalidVersion:
        return False


def guard_mmpretrain_multimodal() -> bool:
    """Stop ``mmpretrain.models`` from importing multimodal models that cannot import.

    Called by ``spinexr/__init__.py`` before any spinexr module imports mmpretrain. Does nothing
    when mmpretrain is absent, when transformers is absent or older than 4.52, or when
    ``mmpretrain.models`` was already imported (whatever happened then cannot be undone here).

    Returns:
        bool: True when mmpretrain's ``WITH_MULTIMODAL`` flag was cleared by this call.
    """
    if 'mmpretrain.models' in sys.modules or installed_version('mmpretrain') is None:
        return False
    if not multimodal_breaks(installed_version('transformers')):
        return False
    from mmpretrain.utils import dependency
    if not getattr(dependency, 'WITH_MULTIMODAL', False):
        return False
    dependency.WITH_MULTIMODAL = False
    return True
