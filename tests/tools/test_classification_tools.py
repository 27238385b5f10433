"""End to end on tiny data (64 px, 1 epoch): ResNet-50 through tools/train.py + tools/test.py;
cross-validation of two small ResNets -> weight search on their OOF predictions -> ensemble
checkpoint -> ensemble through tools/test.py -> ROC report."""
import csv
import importlib.util
import json

import pytest
from mmengine.config import Config

from spinexr.testing import make_tiny_coco
from _tools import REPO
from spinexr.experiments.cross_validation import best_checkpoint


def _tool(rel_path):
    spec = importlib.util.spec_from_file_location(rel_path.replace('/', '_')[:-3],
                                                  REPO / rel_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tiny(cfg: Config, data_root: str, size: int = 64) -> Config:
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if not loader:
            continue
        loader.update(batch_size=4, num_workers=0, persistent_workers=False)
        loader.dataset.data_root = data_root
        for t in loader.dataset.pipeline:
            if t.type == 'Resize':
                t.scale = (size, size)
    return cfg


@pytest.mark.slow
def test_cv_search_train_test_ensemble(tmp_path):
    data_root = str(tmp_path / 'data') + '/'
    make_tiny_coco(data_root, split='train', num_images=16, img_size=(80, 48), seed=5,
                   normal_share=0.45)
    test_ann = make_tiny_coco(data_root, split='test', num_images=8, img_size=(80, 48), seed=6,
                              normal_share=0.45)

    cfg = _tiny(Config.fromfile(str(REPO / 'configs/classifiers/resnet50_60e_vindr-384.py')),
                data_root)
    cfg.train_cfg.max_epochs = 1
    cfg.param_scheduler[0].update(T_max=1, end=1)
    cfg.default_hooks.logger.interval = 1
    r50_cfg = str(tmp_path / 'r50_tiny.py')
    cfg.dump(r50_cfg)
    # a small ResNet for the cross-validation (the recipe is the same, the CPU time is not)
    cfg.model.backbone.update(depth=18, base_channels=16)
    cfg.model.head.in_channels = 128
    member_cfg = str(tmp_path / 'r18_tiny.py')
    cfg.dump(member_cfg)

    # 1. a member (ResNet-50) through tools/train.py and tools/test.py
    cross_validate = _tool('tools/cross_validate.py')
    work = tmp_path / 'r50'
    _tool('tools/train.py').main([r50_cfg, '--work-dir', str(work)])
    ckpt = best_checkpoint(str(work))  # best by val AUROC, else the last
    r50_pred = str(work / 'test_pred.csv')
    _tool('tools/test.py').main([r50_cfg, ckpt, '--work-dir', str(work / 'test'), '--cfg-options',
                                 f'test_evaluator.prediction_file={r50_pred}'])
    assert len(list(csv.DictReader(open(r50_pred)))) == 8

    # 2. two-fold CV of two models -> out-of-fold table (train split only)
    cv_dir = tmp_path / 'cv'
    oof = cross_validate.main(
        [member_cfg, member_cfg, '--names', 'r18a', 'r18b', '--n-splits', '2',
         '--work-dir', str(cv_dir)])
    rows = list(csv.DictReader(open(oof)))
    assert len(rows) == 16 and {r['split'] for r in rows} == {'train'}
    assert {r['fold'] for r in rows} == {'0', '1'}
    folds = json.loads((cv_dir / 'folds.json').read_text())['folds']
    assert all(r['fold'] == str(folds[r['study_id']]) for r in rows)

    # 3. weights + threshold on OOF predictions only
    search = str(cv_dir / 'search.json')
    payload = _tool('tools/search_ensemble.py').main(
        [oof, '--out', search, '--test-ann-file', test_ann])
    assert sum(payload['weights'].values()) == pytest.approx(1.0)

    # 4. ensemble of two CV checkpoints, weights from the search, via tools/test.py
    ens = _tiny(Config.fromfile(str(REPO / 'configs/classifiers/ensemble_vindr-384.py')),
                data_root)
    ens.model.members = [
        dict(name='r18a', config=member_cfg,
             checkpoint=best_checkpoint(str(cv_dir / 'r18a' / 'fold_1'))),
        dict(name='r18b', config=member_cfg,
             checkpoint=best_checkpoint(str(cv_dir / 'r18b' / 'fold_0'))),
    ]
    ens.model.weights = None
    ens.model.weights_file = search
    pred_file = str(tmp_path / 'ens_pred.csv')
    ens.test_evaluator.update(threshold=search, n_bootstrap=50, prediction_file=pred_file)
    ens_cfg = str(tmp_path / 'ens.py')
    ens.dump(ens_cfg)
    ens_ckpt = str(tmp_path / 'ens.pth')
    _tool('tools/model_converters/ensemble_checkpoint.py').main([ens_cfg, '--out', ens_ckpt])
    _tool('tools/test.py').main([ens_cfg, ens_ckpt, '--work-dir', str(tmp_path / 'ens_work')])
    pred = list(csv.DictReader(open(pred_file)))
    assert len(pred) == 8 and {r['split'] for r in pred} == {'test'}
    assert {'prob', 'prob_r18a', 'prob_r18b'} <= set(pred[0])
    w = payload['weights']
    for r in pred:
        expected = w['r18a'] * float(r['prob_r18a']) + w['r18b'] * float(r['prob_r18b'])
        assert float(r['prob']) == pytest.approx(expected, abs=1e-5)

    # 5. table rows + ROC curves
    out_dir = tmp_path / 'report'
    report = _tool('tools/analysis_tools/classifier_report.py').main(
        [pred_file, '--thresholds', search, '--out-dir', str(out_dir), '--n-bootstrap', '50'])
    image_rows = [r['model'] for r in report if r.get('level') != 'study']
    assert image_rows == ['ensemble', 'r18a', 'r18b']
    assert [(r['model'], r['rule']) for r in report if r.get('level') == 'study'] == [
        ('ensemble', 'max'), ('r18a', 'max'), ('r18b', 'max')]
    assert (out_dir / 'roc.png').stat().st_size > 1000
