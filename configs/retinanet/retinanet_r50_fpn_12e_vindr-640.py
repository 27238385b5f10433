# RetinaNet R50-FPN (focal loss, gamma 2.0, alpha 0.25 as in mmdet) on VinDr-SpineXR, 640 px,
# multi-scale 480-768 training, 12 epochs (mmdet 1x).
#
# Inherits mmdet's own model and 1x schedule (a full mmdet *_coco.py cannot be combined with our
# dataset/runtime bases: mmengine refuses duplicate keys among bases).
# The backbone trains from scratch (nothing downloads); see docs/comparison.md for a local
# ImageNet checkpoint (model.backbone.init_cfg...).
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py',
    '../_base_/datasets/vindr_spinexr_detection.py',
]


model = dict(
    backbone=dict(init_cfg=None, frozen_stages=-1, norm_eval=False),
    bbox_head=dict(num_classes=7))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomChoiceResize',
         scales=[(s, s) for s in range(480, 769, 32)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

val_evaluator = dict(
    _delete_=True, type='VinDrDetMetric',
    ann_file='data/vindr_spinexr/annotations/test.json', score_thr=0.5)
test_evaluator = val_evaluator

# mmdet's RetinaNet uses lr 0.01 for 16 images per iteration; the dataset base uses 2.
optim_wrapper = dict(optimizer=dict(lr=0.00125))
auto_scale_lr = dict(enable=False, base_batch_size=2)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3))
