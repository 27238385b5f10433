# A user's project config: a stock mmdet detector, spinexr's VinDr dataset, and the project's own
# registered transform (CLAHE) imported through custom_imports.
_base_ = [
    'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py',
    '../../../configs/_base_/datasets/vindr_spinexr_detection.py',
    '../../../configs/_base_/default_runtime.py',
]

custom_imports = dict(
    imports=['spinexr', 'projects.example_project.clahe'], allow_failed_imports=False)

model = dict(backbone=dict(init_cfg=None), bbox_head=dict(num_classes=7))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='CLAHE', clip_limit=2.0, tile_grid_size=(8, 8)),
    dict(type='Resize', scale=(640, 640), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
