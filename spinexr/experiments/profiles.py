"""The run profiles of every experiment and the one size rescaler their configs go through.

:data:`PROFILES` is the single table: a profile is a dict of the fields below; each experiment
reads the fields it needs and serves the profiles listed in :data:`EXPERIMENT_PROFILES`
(:func:`profiles_for`). A field that is absent or ``None`` keeps what the experiment would do
without it (for the ablation: the config's own value).

Fields:
    num_train, num_test, size_scale: phantom size of the comparison (images per split, image
        size factor of :func:`spinexr.datasets.phantom.generate_phantom`).
    img_size (int): Image size in pixels. The comparison converts the phantom at this longer side
        and scales the 640 px configs by ``img_size / 640``; the ablation rescales each config
        from its own ``img_scale``. Both go through :func:`scale_pipeline_sizes`.
    iters (int): Iterations of every iteration-based ``demo`` schedule (``None``: each model's).
    max_epochs (int): Epochs of the ablation runs (schedulers and hooks scaled with them).
    batch_size, test_batch_size (int): Train / test batch size (no gradient accumulation).
    workers (int): Dataloader workers (``None``: the comparison's :data:`FULL_WORKERS`, the
        ablation's config value).
    log_interval (int): Logger interval in iterations.
    train_indices (int): Train on the first this many training images only.
    demo (bool): The comparison's short CPU schedules (ResNet-18, a few hundred iterations).
    n_bootstrap (int): Bootstrap replicates of the comparison's confidence intervals.
    cls_img_size, cls_epochs, cls_folds: The classifier chain's input size, epochs and folds.
"""
from typing import Dict, Optional

#: Dataloader workers of the comparison's derived configs when the profile leaves ``workers``
#: unset (the ``full`` profile on a GPU machine).
FULL_WORKERS = 4

#: Every run profile. ``cpu-demo`` (comparison): fits in 30 minutes on 2 CPU cores. ``full``
#: (comparison and ablation): the configs as written at 640 px. ``cpu`` (ablation): 128 px,
#: 8 epochs, batch 8 (YOLO11-n: about 1-2 s per iteration on 2 free cores). ``smoke`` (ablation):
#: 64 px, 3 epochs on the first 64 training images, only to check that the ladder runs end to end.
PROFILES: Dict[str, Dict[str, object]] = {
    'cpu-demo': dict(num_train=64, num_test=24, size_scale=0.25, img_size=320, iters=None,
                     batch_size=2, demo=True, n_bootstrap=1000, workers=0,
                     cls_img_size=64, cls_epochs=5, cls_folds=2),
    'full': dict(num_train=600, num_test=200, size_scale=1.0, img_size=640, iters=None,
                 batch_size=None, demo=False, n_bootstrap=1000, workers=None,
                 cls_img_size=384, cls_epochs=60, cls_folds=5),
    'cpu': dict(img_size=128, max_epochs=8, batch_size=8, workers=0, test_batch_size=8,
                log_interval=5),
    'smoke': dict(img_size=64, max_epochs=3, batch_size=8, workers=0, test_batch_size=16,
                  log_interval=2, train_indices=64),
}

#: The profiles each experiment accepts, in :data:`PROFILES`.
EXPERIMENT_PROFILES: Dict[str, tuple] = {
    'comparison': ('cpu-demo', 'full'),
    'ablation': ('full', 'cpu', 'smoke'),
}


def profiles_for(experiment: str) -> Dict[str, Dict[str, object]]:
    """The entries of :data:`PROFILES` that an experiment accepts.

    Args:
        experiment (str): A key of :data:`EXPERIMENT_PROFILES` (``'comparison'``, ``'ablation'``).

    Returns:
        dict: Profile name -> the table's entry (the same dict objects, not copies).
    """
    return {name: PROFILES[name] for name in EXPERIMENT_PROFILES[experiment]}


def get_profile(name: str, experiment: str,
                overrides: Optional[Dict[str, object]] = None) -> Dict[str, object]:
    """A copy of one profile of an experiment, with ``overrides`` applied.

    Args:
        name (str): Profile name.
        experiment (str): A key of :data:`EXPERIMENT_PROFILES`.
        overrides (dict, optional): Field values to change (e.g. ``{'iters': 20}``).

    Returns:
        dict: The profile's fields.

    Raises:
        KeyError: When the experiment has no such profile.
    """
    if name not in EXPERIMENT_PROFILES[experiment]:
        raise KeyError(f'unknown profile {name!r}; choose from '
                       f'{sorted(EXPERIMENT_PROFILES[experiment])}')
    return dict(PROFILES[name], **(overrides or {}))


def _round32(values, factor: float) -> tuple:
    return tuple(max(32, int(round(v * factor / 32.0)) * 32) for v in values)


def scale_pipeline_sizes(obj: object, factor: float) -> object:
    """Multiply every image size of a pipeline, model or whole config by ``factor``.

    ``scale`` / ``scales`` / ``img_scale`` / ``size`` / ``random_size_range`` tuples of integers
    are rounded to multiples of 32 (at least 32); ``border`` offsets (mosaic's affine) are scaled
    as they are. Everything else is copied unchanged. Returns a new object (the input is not
    changed).

    Args:
        obj (object): A pipeline list, a model dict, a whole config dict (``Config.to_dict()``),
            or any nesting of dicts and lists.
        factor (float): New size over old size.

    Returns:
        object: The scaled copy.
    """
    if isinstance(obj, list):
        return [scale_pipeline_sizes(o, factor) for o in obj]
    if isinstance(obj, dict):
        out = type(obj)()
        for k, v in obj.items():
            if (k in ('scale', 'img_scale', 'size', 'random_size_range')
                    and isinstance(v, (tuple, list)) and v and isinstance(v[0], int)):
                out[k] = _round32(v, factor)
            elif k == 'border' and isinstance(v, (tuple, list)):
                out[k] = tuple(int(round(b * factor)) for b in v)
            elif k in ('scale', 'scales') and isinstance(v, (tuple, list)):
                out[k] = [_round32(t, factor) if isinstance(t, (tuple, list)) else t for t in v]
            else:
                out[k] = scale_pipeline_sizes(v, factor)
        return out
    return obj


def scale_anchor_sizes(obj: object, factor: float) -> object:
    """Multiply the anchor sizes of every mmdet anchor generator in a model config by ``factor``.

    When the input is resized by ``factor`` the lesions shrink with it; scaling the anchors too
    keeps the anchor-to-box overlaps (and so the assigner's positives) those of the original
    config. ``octave_base_scale`` (RetinaNet) or ``scales`` (RPN) is scaled; ``strides`` stay.

    Args:
        obj (object): A model config (dicts and lists).
        factor (float): New image size over old.

    Returns:
        object: The scaled copy.
    """
    if isinstance(obj, list):
        return [scale_anchor_sizes(o, factor) for o in obj]
    if isinstance(obj, dict):
        out = type(obj)((k, scale_anchor_sizes(v, factor)) for k, v in obj.items())
        if 'AnchorGenerator' in str(obj.get('type', '')):
            if 'octave_base_scale' in out:
                out['octave_base_scale'] = out['octave_base_scale'] * factor
            elif 'scales' in out:
                out['scales'] = [s * factor for s in out['scales']]
        return out
    return obj


def default_profile() -> str:
    """The comparison's default: ``'full'`` when a CUDA GPU is present, else ``'cpu-demo'``."""
    import torch
    return 'full' if torch.cuda.is_available() else 'cpu-demo'
