# Ablation step 1, "+ standard augmentation": the YOLO11-n recipe's mosaic, random affine, HSV
# jitter, horizontal flip and multi-scale training (mosaic closed for the last 10 epochs), without
# mixup. Baseline: yolo11n_a0_baseline_vindr-640.py.
_base_ = '../yolo11/yolo11n_35e_vindr-640.py'

train_pipeline = [t for t in _base_.train_pipeline if t['type'] != 'CachedMixUp']
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
