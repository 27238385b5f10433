"""The example project's own registered component trains through tools/train.py."""
import numpy as np
import pytest

from _tools import REPO, run_tool


def test_clahe_transform_equalises():
    import sys
    sys.path.insert(0, str(REPO))
    try:
        from projects.example_project.clahe import CLAHE
    finally:
        sys.path.remove(str(REPO))
    img = (np.linspace(100, 120, 64 * 64).reshape(64, 64)).astype(np.uint8)
    out = CLAHE(clip_limit=4.0)(dict(img=img.copy()))['img']
    assert out.shape == img.shape and out.dtype == np.uint8
    assert out.std() > img.std()  # contrast stretched
    with pytest.raises(ValueError):
        CLAHE(clip_limit=0)


@pytest.mark.slow
def test_example_project_trains_one_iteration(tiny_coco, tmp_path):
    root = f'{tiny_coco}/'
    leaf = tmp_path / 'leaf.py'
    leaf.write_text(f"""
_base_ = ['{REPO}/projects/example_project/configs/retinanet_r18_clahe_vindr.py']
_data = dict(data_root='{root}')
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=_data)
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=_data)
test_dataloader = val_dataloader
val_evaluator = dict(ann_file='{root}annotations/test.json')
test_evaluator = val_evaluator
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=1, val_interval=100)
param_scheduler = []
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=1))
""")
    work = tmp_path / 'work'
    run_tool(['tools/train.py', str(leaf), '--work-dir', str(work)], env={'PYTHONPATH': str(REPO)})
    assert (work / 'iter_1.pth').is_file()
