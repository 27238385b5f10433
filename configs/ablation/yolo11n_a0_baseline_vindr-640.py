# Ablation step 0, "baseline": YOLO11-n with the recipe's optimiser and schedule but no data
# augmentation (letterbox resize only), the default sampler and Ultralytics' BCE class loss.
# The ladder is cumulative: a1 (+ standard aug) -> a2 (+ mixup 0.1) -> a3 (+ copy-paste 0.2)
# -> a4 (+ focal loss) -> a5 (+ class-balanced sampling). Run them all with
#   python tools/run_ablation.py --seeds 0 1 2          (see docs/imbalance.md)
_base_ = '../yolo11/yolo11n_35e_vindr-640.py'

# The recipe's last-stage pipeline without its random affine / HSV / flip: a letterbox (resize,
# then pad at the bottom/right to the square input).
def _letterbox_only(pipeline, img_scale):
    out = []
    for t in pipeline:
        if t['type'] in ('YOLORandomAffine', 'UltralyticsHSVRandomAug', 'RandomFlip'):
            continue
        out.append(t)
        if t['type'] == 'Resize':
            out.append(dict(type='Pad', size=img_scale, pad_val=dict(img=(114, 114, 114))))
    return out


train_pipeline = _letterbox_only(_base_.train_pipeline_stage2, _base_.img_scale)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
model = dict(data_preprocessor=dict(batch_augments=None))  # no multi-scale either
# The recipe's hooks but CloseMosaicHook (EMA, lr schedule stay): no mosaic stage to close.
custom_hooks = [h for h in _base_.custom_hooks if h['type'] != 'CloseMosaicHook']
