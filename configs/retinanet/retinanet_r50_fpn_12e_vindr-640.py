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


model = dict(
    backbone=dict(init_cfg=None, frozen_stages=-1, norm_eval=False),
    bbox_head=dict(num_classes=7))


# mmdet's RetinaNet uses lr 0.01 for 16 images per iteration; the dataset base uses 2.
optim_wrapper = dict(optimizer=dict(lr=0.00125))
auto_scale_lr = dict(enable=False, base_batch_size=2)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3))
