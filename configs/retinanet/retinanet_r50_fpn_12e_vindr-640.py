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
    '../_base_/datasets/vindr_spinexr_detection_ms.py',
]


# Anchors half of mmdet's size (octave base scale 2: 16-203 px instead of 32-406 px). The median
# osteophyte (74 x 82 px on a 2874 px radiograph, 16 x 18 px at 640) overlaps mmdet's smallest anchor
# at IoU 0.29 at best; 16 px anchors reach 0.85 (spinexr.evaluation.anchor_coverage;
# tests/configs/test_baseline_detectors.py checks every class).
model = dict(
    backbone=dict(init_cfg=None, frozen_stages=-1, norm_eval=False),
    bbox_head=dict(num_classes=7, anchor_generator=dict(octave_base_scale=2)))


# mmdet's RetinaNet uses lr 0.01 for 16 images per iteration; the dataset base uses 2.
optim_wrapper = dict(optimizer=dict(lr=0.00125))
auto_scale_lr = dict(enable=False, base_batch_size=2)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3))
