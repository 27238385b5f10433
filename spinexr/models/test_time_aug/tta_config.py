"""Turn a detector config into its test-time-augmentation form (``tools/test.py --tta``).

The views are derived from the config's own test pipeline, so one rule serves every detector
(the mmdet models and the YOLO11 adapter all load, ``Resize(scale, keep_ratio=True)``, optionally
load annotations, and pack): the ``Resize`` becomes one resize per scale factor, each seen as is
and flipped horizontally (mmcv's ``TestTimeAug``), and the model is wrapped in
:class:`~spinexr.models.test_time_aug.FusionTTAModel`. Settings come from the config's ``tta``
dict (the shipped runtime base states the defaults below), so TTA is switched in config with
``--cfg-options tta.enable=True`` as well as with ``--tta``::

    tta = dict(enable=False, scales=(1.0, 0.83, 0.67), flip=True,
               fusion=dict(method='wbf', iou_thr=0.55, skip_box_thr=0.0, conf_type='avg'),
               max_per_img=100)

The scales are Ultralytics' own test-time scales for YOLO (``augment=True``: 1, 0.83, 0.67 with a
horizontal flip); each resized view is padded to the detector's stride by its data preprocessor.
"""
import copy
from typing import Dict, List, Sequence

from mmengine.config import Config, ConfigDict

#: The ``tta`` settings used where a config states none (or only some) of them.
DEFAULT_TTA: Dict[str, object] = dict(
    enable=False,
    scales=(1.0, 0.83, 0.67),
    flip=True,
    fusion=dict(method='wbf', iou_thr=0.55, skip_box_thr=0.0, conf_type='avg'),
    max_per_img=100)

_FLIP_KEYS = ('flip', 'flip_direction')


def build_tta_pipeline(pipeline: Sequence[dict], scales: Sequence[float] = (1.0, ),
                       flip: bool = True) -> List[dict]:
    """Make the views' pipeline from a test pipeline.

    Args:
        pipeline (Sequence[dict]): A test pipeline with one ``Resize`` (with ``scale``) and
            ``PackDetInputs`` last.
        scales (Sequence[float]): Factors of the ``Resize`` scale, one view (or two with
            ``flip``) each.
        flip (bool): Add a horizontally flipped copy of every scale.

    Returns:
        list[dict]: The steps before ``Resize``, then one ``TestTimeAug`` holding the resizes,
        the flips, the steps between ``Resize`` and packing, and the packing (with ``flip`` and
        ``flip_direction`` in its meta keys).

    Raises:
        ValueError: When the pipeline has no single ``Resize`` with a ``scale``, does not end in
            ``PackDetInputs``, or ``scales`` is empty or not positive.
    """
    steps = [copy.deepcopy(dict(t)) for t in pipeline]
    resize_at = [i for i, t in enumerate(steps) if t.get('type') == 'Resize' and 'scale' in t]
    if len(resize_at) != 1:
        raise ValueError('TTA: the test pipeline needs exactly one Resize with a scale, found '
                         f'{[t.get("type") for t in steps]}')
    if not steps or steps[-1].get('type') != 'PackDetInputs':
        raise ValueError('TTA: the test pipeline must end in PackDetInputs, found '
                         f'{steps[-1].get("type") if steps else None}')
    if not scales or any(float(s) <= 0 for s in scales):
        raise ValueError(f'TTA: scales must be positive factors, got {list(scales)}')
    i = resize_at[0]
    resize = steps[i]
    base = resize['scale']
    base = (base, base) if isinstance(base, (int, float)) else tuple(base)
    resizes = []
    for s in scales:
        view = dict(resize)
        view['scale'] = tuple(max(1, int(round(float(s) * v))) for v in base)
        resizes.append(view)
    pack = dict(steps[-1])
    if 'meta_keys' in pack:
        pack['meta_keys'] = tuple(pack['meta_keys']) + tuple(
            k for k in _FLIP_KEYS if k not in pack['meta_keys'])
    transforms = [resizes]
    if flip:
        transforms.append([dict(type='RandomFlip', prob=1.0, direction='horizontal'),
                           dict(type='RandomFlip', prob=0.0, direction='horizontal')])
    transforms += [[t] for t in steps[i + 1:-1]]
    transforms.append([pack])
    return steps[:i] + [dict(type='TestTimeAug', transforms=transforms)]


def _innermost_dataset(loader_cfg: ConfigDict) -> ConfigDict:
    dataset = loader_cfg['dataset']
    while 'dataset' in dataset:  # dataset wrappers
        dataset = dataset['dataset']
    return dataset


def tta_settings(cfg: Config) -> Dict[str, object]:
    """Return the config's ``tta`` dict completed with :data:`DEFAULT_TTA`."""
    given = dict(cfg.get('tta', None) or {})
    unknown = set(given) - set(DEFAULT_TTA)
    if unknown:
        raise KeyError(f'tta: unknown keys {sorted(unknown)}; known: {sorted(DEFAULT_TTA)}')
    out = copy.deepcopy(DEFAULT_TTA)
    fusion = dict(out['fusion'], **dict(given.pop('fusion', None) or {}))
    out.update(given)
    out['fusion'] = fusion
    return out


def enable_tta(cfg: Config) -> Config:
    """Switch a detector config's test to test-time augmentation, in place.

    The test dataloader gets the views' pipeline and mmengine's ``pseudo_collate`` (each sample
    holds a list of views, which a stacking collate such as ``yolo_collate`` cannot batch), and
    ``cfg.model`` becomes a :class:`FusionTTAModel` around the detector. Checkpoints load into the
    wrapped detector unchanged (mmengine loads into a TTA model's ``module``).

    Args:
        cfg (Config): A detection config with ``model`` and ``test_dataloader``.

    Returns:
        Config: ``cfg``.
    """
    tta = tta_settings(cfg)
    dataset = _innermost_dataset(cfg.test_dataloader)
    dataset['pipeline'] = build_tta_pipeline(dataset['pipeline'], scales=tta['scales'],
                                             flip=bool(tta['flip']))
    cfg.test_dataloader['collate_fn'] = dict(type='pseudo_collate')
    cfg.model = ConfigDict(type='FusionTTAModel', module=cfg.model,
                           max_per_img=int(tta['max_per_img']), **tta['fusion'])
    cfg.tta = ConfigDict(tta, enable=True)
    return cfg
