# Ablation step 0, "baseline": YOLO11-n with the recipe's optimiser and schedule but no data
# augmentation (letterbox resize only), the default sampler and Ultralytics' BCE class loss.
# The ladder is cumulative: a1 (+ standard aug) -> a2 (+ mixup 0.1) -> a3 (+ copy-paste 0.2)
# -> a4 (+ focal loss) -> a5 (+ class-balanced sampling). Run them all with
#   python tools/run_ablation.py --seeds 0 1 2          (see docs/imbalance.md)
_base_ = '../yolo11/yolo11n_35e_vindr-640.py'

# The recipe's last-stage pipeline (letterbox) without its RandomAffine / HSV / flip.
train_pipeline = [
    t for t in _base_.train_pipeline_stage2
    if t['type'] not in ('YOLORandomAffine', 'UltralyticsHSVRandomAug', 'RandomFlip')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
model = dict(data_preprocessor=dict(batch_augments=None))  # no multi-scale either
# Only the EMA hook: there is no mosaic stage to switch off.
custom_hooks = [h for h in _base_.custom_hooks if h['type'] != 'PipelineSwitchHook']
