# VinDr-SpineXR image-level classification (0 = normal / "No finding", 1 = abnormal), 384 x 384,
# on the converted layout (tools/dataset_converters/vindr_spinexr.py):
#   data/vindr_spinexr/{train,test}/<image_id>.png, data/vindr_spinexr/annotations/{train,test}.json
#
# Splits -- no choice is ever made on the test split:
#   train = folds 1-4 of the train split, val = fold 0 of the train split (5 study-grouped,
#   label-stratified folds computed from annotations/train.json with seed 0); early stopping and
#   the best checkpoint use val. test = the official test split, for the final evaluation only.
#   tools/cross_validate.py replaces `folds`/`fold_file` to train every fold.
# Dataset root: the top-level `data_root` below is the only place it is given. Every path under
# it is written with the placeholder '{data_root}', which SpinexrRunner resolves at run time
# (spinexr/utils/data_root.py), so `--cfg-options data_root=/data/vindr/` (or tools' --data-root)
# moves every dataset, evaluator and transform path. Code that builds datasets from this config
# without the runner calls spinexr.utils.data_root.resolve_data_root(cfg) first.
dataset_type = 'VinDrSpineXRClsDataset'
data_root = 'data/vindr_spinexr/'
img_scale = (384, 384)

# Grey PNG -> 3 identical channels (LoadImageFromFile's default color_type='color'), ImageNet
# mean/std, BGR -> RGB.
data_preprocessor = dict(
    num_classes=2,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,
)

meta_keys = ('sample_idx', 'img_path', 'ori_shape', 'img_shape', 'flip', 'flip_direction',
             'image_id', 'study_id', 'split')
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='color'),
    # The whole radiograph is squeezed to 384 x 384 (no crop: a lesion may sit anywhere).
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    # Horizontal flip only: a vertically flipped spine is not a radiograph the model will see.
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    # Uniform rotation in [-15, 15] degrees: magnitude U(0, 15), sign flipped with p = 0.5.
    dict(type='Rotate', magnitude_level=10, magnitude_range=(0, 15), magnitude_std='inf',
         random_negative_prob=0.5, prob=1.0, pad_val=0, interpolation='bilinear'),
    dict(type='ColorJitter', brightness=0.2, contrast=0.2, saturation=0.2),
    # Gaussian blur, radius U(0.1, 2.0) px, on half of the images.
    dict(type='GaussianBlur', magnitude_level=10, magnitude_range=(0.1, 2.0),
         magnitude_std='inf', prob=0.5),
    dict(type='PackInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadImageFromFile', color_type='color'),
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    dict(type='PackInputs', meta_keys=meta_keys),
]

train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root='{data_root}',
        ann_file='annotations/train.json',
        folds=[1, 2, 3, 4],
        n_splits=5,
        fold_seed=0,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root='{data_root}',
        ann_file='annotations/train.json',
        folds=[0],
        n_splits=5,
        fold_seed=0,
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root='{data_root}',
        ann_file='annotations/test.json',
        test_mode=True,
        pipeline=test_pipeline))

# Per-epoch validation: point estimates only. Threshold 0.5 (not tuned on these data).
val_evaluator = dict(type='BinaryClsMetric', threshold=0.5, n_bootstrap=0)
# Final test: bootstrap CIs. For an honest operating point pass the threshold chosen on
# out-of-fold validation predictions: test_evaluator.threshold=work_dirs/.../ensemble_search.json
test_evaluator = dict(type='BinaryClsMetric', threshold=0.5, n_bootstrap=1000)
