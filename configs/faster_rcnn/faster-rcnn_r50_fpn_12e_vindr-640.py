# Faster R-CNN R50-FPN on VinDr-SpineXR, 640 px, multi-scale 480-768 training, 12 epochs (mmdet 1x).
#
# Inherits mmdet's own model and 1x schedule (a full mmdet *_coco.py cannot be combined with our
# dataset/runtime bases: mmengine refuses duplicate keys among bases).
# The backbone trains from scratch (nothing downloads). With a local ImageNet ResNet-50 checkpoint:
#   --cfg-options model.backbone.init_cfg._delete_=True model.backbone.init_cfg.type=Pretrained \
#       model.backbone.init_cfg.checkpoint=/path/resnet50.pth \
#       model.backbone.frozen_stages=1 model.backbone.norm_eval=True
# (see docs/comparison.md).
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py',
    '../_base_/datasets/vindr_spinexr_detection_ms.py',
]


# RPN anchors half of mmdet's size (scale 4: 16-256 px instead of 32-512 px). The median osteophyte
# (74 x 82 px on a 2874 px radiograph, 16 x 18 px at 640) overlaps mmdet's smallest anchor at IoU
# 0.29 at best, below the RPN assigner's min_pos_iou 0.3, so most osteophytes would get no positive
# anchor; 16 px anchors reach 0.85 (spinexr.evaluation.anchor_coverage;
# tests/configs/test_baseline_detectors.py checks every class).
model = dict(
    # from scratch: no download, BN layers train, no frozen stem
    backbone=dict(init_cfg=None, frozen_stages=-1, norm_eval=False),
    rpn_head=dict(anchor_generator=dict(scales=[4])),
    roi_head=dict(bbox_head=dict(num_classes=7)))


# mmdet's lr 0.02 is for 16 images per iteration; the dataset base uses 2 (linear scaling).
optim_wrapper = dict(optimizer=dict(lr=0.0025))
auto_scale_lr = dict(enable=False, base_batch_size=2)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3))
