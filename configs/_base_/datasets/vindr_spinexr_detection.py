# VinDr-SpineXR detection, converted layout (tools/dataset_converters/vindr_spinexr.py):
#   data/vindr_spinexr/{train,test}/<image_id>.png, data/vindr_spinexr/annotations/{train,test}.json
#
# The release has no validation split. Here val = test, FOR MONITORING ONLY: never select a
# checkpoint, threshold or any hyper-parameter on it (that is test leakage). For model selection
# use vindr_spinexr_detection_holdout.py (a study-grouped hold-out of train written by the
# converter with --val-fraction).
# Dataset root: the top-level `data_root` below is the only place it is given. Every path under
# it is written with the placeholder '{data_root}', which SpinexrRunner resolves at run time
# (spinexr/utils/data_root.py), so `--cfg-options data_root=/data/vindr/` (or tools' --data-root)
# moves every dataset, evaluator and transform path. Code that builds datasets from this config
# without the runner calls spinexr.utils.data_root.resolve_data_root(cfg) first.
dataset_type = 'VinDrSpineXRDataset'
data_root = 'data/vindr_spinexr/'
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(640, 640), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(640, 640), keep_ratio=True),
    # If you don't have a gt annotation, delete the pipeline
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'image_id',
                   'study_id')),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root='{data_root}',
        ann_file='annotations/train.json',
        data_prefix=dict(img=''),
        # keep the ~50% "No finding" images: they are the negatives
        filter_cfg=dict(filter_empty_gt=False, min_size=0),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root='{data_root}',
        ann_file='annotations/test.json',
        data_prefix=dict(img=''),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='CocoMetric',
    ann_file='{data_root}/annotations/test.json',
    metric='bbox',
    classwise=True,
    format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator
