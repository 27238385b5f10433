"""The VinDr paper's ensemble config (DenseNet-121/169/201, logit average) end to end through the
tools: a ``--average logit`` search json -> ensemble_checkpoint.py -> tools/test.py, whose
prediction file holds ``sigmoid(sum_i w_i logit(p_i))``; a probability-average json is refused."""
import csv
import importlib.util

import numpy as np
import pytest
import torch
from mmengine.config import Config

import spinexr.models  # noqa: F401  (registration)
from spinexr.models.classifiers.ensemble import build_member
from spinexr.testing import make_tiny_coco
from _tools import REPO

NAMES = ('densenet121', 'densenet169', 'densenet201')


def _tool(rel_path):
    spec = importlib.util.spec_from_file_location(rel_path.replace('/', '_')[:-3],
                                                  REPO / rel_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _oof_table(path):
    """A tiny out-of-fold table with the three members' columns (the weights' only source)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    strength = np.array([1.5, 1.0, 0.5])
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['image_id', 'study_id', 'split', 'fold', 'label',
                    *[f'prob_{n}' for n in NAMES]])
        for i, label in enumerate(y):
            probs = 1 / (1 + np.exp(-(rng.normal(0, 1, 3) + strength * (2 * label - 1))))
            w.writerow([f'i{i}', f's{i}', 'train', i % 2, label, *[f'{p:.6f}' for p in probs]])
    return str(path)


@pytest.mark.slow
def test_paper_ensemble_through_the_tools(tmp_path):
    data_root = str(tmp_path / 'data') + '/'
    make_tiny_coco(data_root, split='test', num_images=6, img_size=(80, 48), seed=6,
                   normal_share=0.5)
    oof = _oof_table(tmp_path / 'oof.csv')
    search = _tool('tools/search_ensemble.py')
    logit_json, prob_json = str(tmp_path / 'logit.json'), str(tmp_path / 'prob.json')
    payload = search.main([oof, '--out', logit_json, '--average', 'logit'])
    search.main([oof, '--out', prob_json])

    cfg = Config.fromfile(str(REPO / 'configs/classifiers/ensemble-densenet_vindr-384.py'))
    torch.manual_seed(0)
    for i, member in enumerate(cfg.model.members):  # untrained members with distinct heads
        model = build_member(dict(config=str(REPO / member.config)))
        torch.nn.init.normal_(model.head.fc.weight, std=0.05)
        member.checkpoint = str(tmp_path / f'{member.name}.pth')
        torch.save(dict(state_dict=model.state_dict()), member.checkpoint)
    loader = cfg.test_dataloader
    loader.update(batch_size=3, num_workers=0, persistent_workers=False)
    loader.dataset.data_root = data_root
    for t in loader.dataset.pipeline:
        if t.type == 'Resize':
            t.scale = (64, 64)
    pred_file = str(tmp_path / 'pred.csv')
    cfg.test_evaluator.update(threshold=logit_json, n_bootstrap=20, prediction_file=pred_file)
    cfg.model.weights_file = logit_json
    ens_cfg = str(tmp_path / 'ens.py')
    cfg.dump(ens_cfg)
    ens_ckpt = str(tmp_path / 'ens.pth')
    _tool('tools/model_converters/ensemble_checkpoint.py').main([ens_cfg, '--out', ens_ckpt])
    _tool('tools/test.py').main([ens_cfg, ens_ckpt, '--work-dir', str(tmp_path / 'work')])

    rows = list(csv.DictReader(open(pred_file)))
    assert len(rows) == 6
    w = np.array([payload['weights'][n] for n in NAMES])
    for r in rows:
        p = np.array([float(r[f'prob_{n}']) for n in NAMES])
        assert 1e-3 < p.min() and p.max() < 1 - 1e-3  # logits recoverable from 6 decimals
        expected = 1 / (1 + np.exp(-(np.log(p / (1 - p)) @ w)))
        assert float(r['prob']) == pytest.approx(expected, abs=2e-5)
        assert int(r['pred']) == int(float(r['prob']) >= payload['threshold'])

    with pytest.raises(ValueError, match="average='prob'"):
        _tool('tools/test.py').main([ens_cfg, ens_ckpt, '--work-dir', str(tmp_path / 'work2'),
                                     '--cfg-options', f'model.weights_file={prob_json}'])
