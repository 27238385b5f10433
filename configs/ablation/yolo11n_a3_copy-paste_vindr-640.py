# Ablation step 3, "+ copy-paste 0.2": step 2 plus spinexr's box-level BoxCopyPaste (p = 0.2,
# classes under 5 % of the boxes), applied to every image right after loading, i.e. before
# mosaic / mixup, in both training stages.
_base_ = './yolo11n_a2_mixup_vindr-640.py'

# the training split's annotations, under the config's data root ('{data_root}', resolved at
# run time like the datasets')
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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
custom_hooks = [
    dict(h, switch_pipeline=train_pipeline_stage2) if h['type'] == 'CloseMosaicHook' else h
    for h in _base_.custom_hooks
]
