# ResNet-50 abnormal-vs-normal classifier on VinDr-SpineXR, 384 x 384, one logit + sigmoid BCE
# (focal loss: resnet50_60e_vindr-384_focal.py). Trained from scratch unless a local
# ImageNet checkpoint is given, e.g.
#   --cfg-options model.backbone.init_cfg.type=Pretrained \
#                 model.backbone.init_cfg.checkpoint=/path/to/resnet50_imagenet.pth
# (the backbone's keys must start with 'backbone.'; add init_cfg.prefix='backbone.' for a full
# mmpretrain classifier checkpoint). Nothing is downloaded.
_base_ = [
    'mmpretrain::_base_/models/resnet50.py',
    '../_base_/datasets/vindr_spinexr_classification.py',
    '../_base_/schedules/vindr_cls_adamw_cosine_60e.py',
]

model = dict(
    backbone=dict(init_cfg=None),
    head=dict(
        _delete_=True,
        type='BinaryClsHead',
        in_channels=2048,
        loss=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)))
