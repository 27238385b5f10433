"""The detectors of the comparison and the configs it derives for them.

:data:`MODELS` lists the comparison's rows (a shipped config and what the ``cpu-demo`` profile
changes in it); :func:`derive_config` writes the config a profile trains: data root, image size
(pipelines and anchors through :func:`spinexr.experiments.profiles.scale_pipeline_sizes` and
:func:`~spinexr.experiments.profiles.scale_anchor_sizes`), workers, and the demo schedule.

To add a model (e.g. a classifier row), append a :class:`ModelEntry` to :data:`MODELS`.
"""
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from spinexr.utils.paths import config_path
from .profiles import FULL_WORKERS, scale_anchor_sizes, scale_pipeline_sizes


@dataclass
class ModelEntry:
    """One model of the comparison.

    Attributes:
        name (str): Row label and work-dir name.
        config (str): Shipped config (``configs/...``, resolved by
            :func:`spinexr.utils.paths.config_path`) or a config file path.
        demo_options (dict): Extra config changes (dotted keys) for the ``cpu-demo`` profile.
        demo_lr (float, optional): Learning rate for the ``cpu-demo`` profile.
        notes (str): Text for the table notes.
        demo_notes (str): What ``demo_options`` change, for the table notes of ``cpu-demo``.
        demo_epochs (int, optional): Train the ``cpu-demo`` profile for this many epochs with the
            config's own hooks in charge of lr, EMA and the pipeline switch (the YOLO11 recipe)
            instead of the iteration-based schedule of the other models.
        demo_iters (int, optional): Iterations of the iteration-based ``cpu-demo`` schedule
            (default :data:`DEFAULT_DEMO_ITERS`); a profile's ``iters`` (``--iters``) overrides it.
    """
    name: str
    config: str
    demo_options: Dict[str, object] = field(default_factory=dict)
    demo_lr: Optional[float] = None
    notes: str = ''
    demo_notes: str = ''
    demo_epochs: Optional[int] = None
    demo_iters: Optional[int] = None


#: Iterations of the ``cpu-demo`` schedule for entries without ``demo_iters``.
DEFAULT_DEMO_ITERS = 80

#: ResNet-18 instead of ResNet-50 for the 2-core CPU demo (4x fewer backbone FLOPs).
_R18_FPN = {'model.backbone.depth': 18, 'model.neck.in_channels': [64, 128, 256, 512]}
#: ... and a 128-channel FPN (mmdet: 256), for the anchor-based detectors' CPU demo.
_R18_FPN128 = {**_R18_FPN, 'model.neck.out_channels': 128}

#: The models of the comparison, in table order. Extend this list to add rows.
MODELS: List[ModelEntry] = [
    ModelEntry('faster-rcnn_r50_fpn', 'configs/faster_rcnn/faster-rcnn_r50_fpn_12e_vindr-640.py',
               demo_options={
                   **_R18_FPN128,
                   'model.rpn_head.in_channels': 128,
                   'model.rpn_head.feat_channels': 128,
                   'model.roi_head.bbox_roi_extractor.out_channels': 128,
                   'model.roi_head.bbox_head.in_channels': 128,
                   'model.roi_head.bbox_head.fc_out_channels': 512,
                   # fewer RoIs: the RoI head's fc layers dominate CPU time
                   'model.train_cfg.rpn_proposal.nms_pre': 1000,
                   'model.train_cfg.rpn_proposal.max_per_img': 500,
                   'model.train_cfg.rcnn.sampler.num': 128,
                   'model.test_cfg.rpn.nms_pre': 500,
                   'model.test_cfg.rpn.max_per_img': 300,
                   'train_dataloader.batch_size': 8,
               }, demo_lr=0.02, demo_iters=192,
               demo_notes='FPN and heads 128 channels, 512-d RoI fcs, 128 sampled RoIs, '
               '300 test proposals'),
    ModelEntry('retinanet_r50_fpn', 'configs/retinanet/retinanet_r50_fpn_12e_vindr-640.py',
               demo_options={
                   **_R18_FPN128,
                   'model.bbox_head.in_channels': 128,
                   'model.bbox_head.feat_channels': 128,
                   'model.bbox_head.stacked_convs': 2,
                   'train_dataloader.batch_size': 8,
               }, demo_lr=0.01, demo_iters=192,
               demo_notes='FPN and head 128 channels, 2 head convs per branch'),
    ModelEntry('sparse-rcnn_r50_fpn',
               'configs/sparse_rcnn/sparse-rcnn_r50_fpn_12e_vindr-640.py',
               demo_options=dict(_R18_FPN), demo_lr=1e-4, demo_iters=50),
    ModelEntry('dino-4scale_r50', 'configs/dino/dino-4scale_r50_12e_vindr-640.py',
               demo_options={'model.backbone.depth': 18,
                             'model.neck.in_channels': [128, 256, 512],
                             # a 256 px image has only ~500 encoder tokens to pick 900 from
                             'model.num_queries': 300},
               demo_lr=2e-4, demo_iters=50, demo_notes='300 queries'),
]

MODELS.append(
    ModelEntry('yolo11n', 'configs/yolo11/yolo11n_35e_vindr-640.py',
               demo_options={'train_dataloader.batch_size': 8}, demo_epochs=30,
               demo_notes='30 epochs x 8 img, no gradient accumulation'))
MODELS.append(
    ModelEntry('rtdetr-l', 'configs/rtdetr/rtdetr-l_72e_vindr-640.py',
               demo_options={'train_dataloader.batch_size': 2,
                             'train_dataloader.dataset.indices': 8},
               demo_epochs=1,
               demo_notes='1 epoch x 8 images (4 iterations), no gradient accumulation; '
               'learns nothing on CPU'))

def _set_dotted(cfg, key: str, value: object) -> None:
    """Set ``a.b.c`` in a Config/dict tree (missing dicts are created)."""
    node = cfg
    parts = key.split('.')
    for p in parts[:-1]:
        if p not in node or node[p] is None:
            node[p] = {}
        node = node[p]
    node[parts[-1]] = value


def _epoch_demo(cfg, epochs: int, factor: float) -> None:
    """Shorten an epoch-based recipe (YOLO11's) for the CPU demo, keeping its own hooks."""
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs, val_interval=epochs + 1)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if cfg.optim_wrapper.get('accumulative_counts', 1) != 1:
        cfg.optim_wrapper.accumulative_counts = 1
        cfg.model.loss_gain = 1
    cfg.model = scale_pipeline_sizes(cfg.model, factor)
    for hook in cfg.get('custom_hooks', []):
        if hook['type'] == 'YOLOParamSchedulerHook':
            hook['warmup_epochs'] = 1.0
        elif hook['type'] == 'CloseMosaicHook':
            # the last fifth without mosaic (at least one epoch, none in a 1-epoch demo)
            hook['close_epochs'] = min(epochs - 1, max(1, epochs // 5))
            hook['switch_pipeline'] = scale_pipeline_sizes(hook['switch_pipeline'], factor)
        elif hook['type'] == 'PipelineSwitchHook':  # mmdet's, with an absolute switch epoch
            hook['switch_epoch'] = max(1, epochs - max(1, epochs // 5))
            hook['switch_pipeline'] = scale_pipeline_sizes(hook['switch_pipeline'], factor)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=epochs, max_keep_ckpts=1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=10)


def demo_iters(entry: ModelEntry, profile: Dict[str, object]) -> int:
    """Iterations of the iteration-based demo schedule: the profile's ``iters`` if set, else the
    entry's ``demo_iters``, else :data:`DEFAULT_DEMO_ITERS`."""
    return int(profile.get('iters') or entry.demo_iters or DEFAULT_DEMO_ITERS)


def derive_config(entry: ModelEntry, profile: Dict[str, object], data_root: str,
                  out_file: str) -> str:
    """Write the config that the main job trains for one model.

    Args:
        entry (ModelEntry): The model.
        profile (dict): A comparison profile of
            :data:`spinexr.experiments.profiles.PROFILES`.
        data_root (str): Converted dataset root.
        out_file (str): Where to write the derived config.

    Returns:
        str: ``out_file``.
    """
    from mmengine.config import Config
    cfg = Config.fromfile(config_path(entry.config))
    root = data_root.rstrip('/') + '/'
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[name].dataset.data_root = root
    for name in ('val_evaluator', 'test_evaluator'):
        cfg[name].ann_file = root + 'annotations/test.json'
    factor = float(profile['img_size']) / 640.0
    if factor != 1.0:
        for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            cfg[name].dataset.pipeline = scale_pipeline_sizes(cfg[name].dataset.pipeline, factor)
        cfg.model = scale_anchor_sizes(cfg.model, factor)
    workers = profile.get('workers')
    workers = FULL_WORKERS if workers is None else int(workers)
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[name].num_workers = workers
        cfg[name].persistent_workers = workers > 0
    if profile.get('batch_size'):
        cfg.train_dataloader.batch_size = int(profile['batch_size'])
    cfg.randomness = dict(seed=0)
    if profile.get('demo') and entry.demo_epochs:
        for key, value in entry.demo_options.items():
            _set_dotted(cfg, key, value)
        _epoch_demo(cfg, int(entry.demo_epochs), factor)
    elif profile.get('demo'):
        for key, value in entry.demo_options.items():
            _set_dotted(cfg, key, value)
        iters = demo_iters(entry, profile)
        cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters)
        # no validation while training: the comparison evaluates the final weights on test
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
        warm = min(50, iters // 5)
        cfg.param_scheduler = []
        if warm >= 1:
            cfg.param_scheduler.append(
                dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=warm))
        if iters - warm >= 2:
            cfg.param_scheduler.append(
                dict(type='CosineAnnealingLR', by_epoch=False, begin=warm, end=iters,
                     T_max=iters - warm, eta_min_ratio=0.05))
        if entry.demo_lr is not None:
            cfg.optim_wrapper.optimizer.lr = entry.demo_lr
        cfg.optim_wrapper.setdefault('clip_grad', dict(max_norm=10.0, norm_type=2))
        cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False,
                                            interval=iters, max_keep_ckpts=1)
        cfg.default_hooks.logger = dict(type='LoggerHook', interval=20)
        cfg.log_processor = dict(type='LogProcessor', window_size=20, by_epoch=False)
        cfg.train_dataloader.sampler = dict(type='InfiniteSampler', shuffle=True)
    os.makedirs(osp.dirname(out_file), exist_ok=True)
    cfg.dump(out_file)
    return out_file
