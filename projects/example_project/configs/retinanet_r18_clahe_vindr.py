# A user's project config: a stock mmdet detector, spinexr's VinDr dataset, and the project's own
# registered transform (CLAHE) imported through custom_imports.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    '../../../configs/_base_/datasets/vindr_spinexr_detection.py',
    '../../../configs/_base_/default_runtime.py',
]

custom_imports = dict(
    imports=['spinexr', 'projects.example_project.clahe'], allow_failed_imports=False)

# ResNet-18 backbone (as mmdet's retinanet_r18_fpn_1x_coco.py), from scratch, 7 classes
model = dict(
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512]),
    bbox_head=dict(num_classes=7))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='CLAHE', clip_limit=2.0, tile_grid_size=(8, 8)),
    dict(type='Resize', scale=(640, 640), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
