# VinDr-SpineXR detection as the mmdet baselines train on it: the dataset base plus multi-scale
# training comparable to the YOLO11 recipe (random square scale 480-768, keep ratio, flip; test
# at 640) and spinexr's VinDrDetMetric (COCO + VOC-101 AP, per-class precision/recall at
# score 0.5, bootstrap CIs).
_base_ = './vindr_spinexr_detection.py'

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
    ann_file='{data_root}/annotations/test.json', score_thr=0.5)
test_evaluator = val_evaluator
