# YOLO11-l on VinDr-SpineXR, the FULL recipe of the paper draft this project started from:
# the plain recipe (./yolo11l_35e_vindr-640.py) with the draft's three class-imbalance choices
# switched on together (docs/imbalance.md):
#   * box-level copy-paste of rare classes, p = 0.2 for classes under 5 % of the boxes
#     (BoxCopyPaste right after loading, before mosaic / mixup, in both training stages);
#   * focal classification loss, gamma 2.0, alpha 0.25 (quality-focal |t - p|^gamma on the
#     assigner's soft targets; Lin et al.'s focal loss on hard ones);
#   * class-balanced sampling, image weight = max over its classes of 1 / sqrt(class frequency)
#     (normal images as a class of their own; epoch length unchanged).
# Everything else (optimiser, schedule, EMA, mosaic / mixup / HSV, multi-scale) is the plain
# recipe's. Untested at scale: its effect against the plain recipe is unmeasured (the
# configs/ablation/ ladder measures each step on YOLO11-n; run it on a GPU).
#   tools/train.py configs/yolo11/yolo11l_35e_vindr-640_draft-full.py [--amp]
_base_ = './yolo11l_35e_vindr-640.py'

# The training split's annotations, under the config's data root ('{data_root}', resolved at
# run time like the datasets').
copy_paste = dict(
    type='BoxCopyPaste',
    ann_file=_base_.train_dataloader.dataset.ann_file,
    data_root='{data_root}',
    prob=0.2,
    rare_thr=0.05,
    max_num_pasted=3,
    max_ioa=0.1)


def _with_copy_paste(pipeline):
    out = []
    for t in pipeline:
        out.append(t)
        if t['type'] == 'LoadAnnotations':
            out.append(copy_paste)
    return out


train_pipeline = _with_copy_paste(_base_.train_pipeline)
train_pipeline_stage2 = _with_copy_paste(_base_.train_pipeline_stage2)

model = dict(cls_loss=dict(type='focal', gamma=2.0, alpha=0.25))

train_dataloader = dict(
    sampler=dict(_delete_=True, type='ClassBalancedSampler', exponent=0.5, reduce='max',
                 normal='class'),
    dataset=dict(pipeline=train_pipeline))
custom_hooks = [
    dict(h, switch_pipeline=train_pipeline_stage2) if h['type'] == 'CloseMosaicHook' else h
    for h in _base_.custom_hooks
]
