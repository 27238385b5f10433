"""Helpers for end-to-end tests: tiny detection configs built on the shipped runtime config.

(Running the checkout's ``tools/*.py`` is a test-suite matter: ``tests/_tools.py``.)
"""
import socket
from pathlib import Path

from spinexr.utils.paths import config_path

#: Data part of the tiny detection configs (small images, no workers, iteration-based loop).
_TINY_DATA = """
data_root = '{data_root}/'
metainfo = dict(classes=('Osteophytes', 'Surgical implant', 'Spondylolysthesis',
                         'Foraminal stenosis', 'Disc space narrowing', 'Vertebral collapse',
                         'Other lesions'))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=({size}, {size}), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=({size}, {size}), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='CocoDataset', data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/train.json', data_prefix=dict(img=''),
                 filter_cfg=dict(filter_empty_gt=False), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CocoDataset', data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/test.json', data_prefix=dict(img=''),
                 test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric',
                     ann_file=data_root + 'annotations/test.json', metric='bbox')
test_evaluator = val_evaluator
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters={iters}, val_interval={iters})
param_scheduler = []
optim_wrapper = dict(optimizer=dict(lr=0.005))
default_hooks = dict(checkpoint=dict(by_epoch=False, interval={ckpt_interval}),
                     logger=dict(interval=1))
log_processor = dict(by_epoch=False)
"""

#: mmdet model bases and their overrides for the tiny configs (7 classes, nothing downloads).
MODEL_OVERRIDES = {
    # RetinaNet with a ResNet-18 backbone, as mmdet's retinanet_r18_fpn_1x_coco.py builds it
    'mmdet::_base_/models/retinanet_r50_fpn.py':
    "model = dict(backbone=dict(depth=18, init_cfg=None),\n"
    "             neck=dict(in_channels=[64, 128, 256, 512]), bbox_head=dict(num_classes=7))\n",
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py':
    "model = dict(backbone=dict(init_cfg=None), roi_head=dict(bbox_head=dict(num_classes=7)))\n",
}


def write_det_config(path: Path, data_root: Path,
                     base: str = 'mmdet::_base_/models/retinanet_r50_fpn.py',
                     iters: int = 2, ckpt_interval: int = 1, size: int = 128,
                     extra: str = '') -> Path:
    """Write a tiny leaf detection config in the layout of the shipped configs.

    Bases: an mmdet model file, mmdet's 1x schedule and the shipped
    ``configs/_base_/default_runtime.py`` (mmdet runtime + spinexr plugins, found by
    :func:`spinexr.utils.paths.config_path`); then the tiny data and an iteration-based loop.

    Args:
        path (Path): Where to write the config.
        data_root (Path): A converted-layout dataset (e.g. from ``make_tiny_coco``).
        base (str): A key of :data:`MODEL_OVERRIDES`.
        iters (int): Training iterations.
        ckpt_interval (int): Checkpoint every this many iterations.
        size (int): Resize scale (square, keep ratio).
        extra (str): Config text appended at the end.

    Returns:
        Path: ``path``.
    """
    runtime = config_path('_base_/default_runtime.py')
    text = (f"_base_ = ['{base}', 'mmdet::_base_/schedules/schedule_1x.py', '{runtime}']\n"
            + MODEL_OVERRIDES[base] + _TINY_DATA.format(
                data_root=data_root, iters=iters, ckpt_interval=ckpt_interval, size=size) + extra)
    path.write_text(text)
    return path


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
