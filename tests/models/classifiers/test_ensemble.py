"""WeightedEnsembleClassifier with tiny members: weighted mean, TTA, weights file, checkpoints."""
import json

import pytest
import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import spinexr.models  # noqa: F401  (registration)
from spinexr.engine.checkpoint import load_checkpoint
from spinexr.evaluation.roc import positive_probability
from spinexr.models.classifiers.ensemble import (DRAFT_WEIGHTS_CHOSEN_ON_TEST, DRAFT_WEIGHTS_NAME,
                                                 abnormal_logit, save_ensemble_checkpoint)

PREPROC = dict(type='ClsDataPreprocessor', mean=[123.675, 116.28, 103.53],
               std=[58.395, 57.12, 57.375], to_rgb=True)


def _member(name, seed_channels=8, checkpoint=None):
    return dict(
        name=name, checkpoint=checkpoint, data_preprocessor=PREPROC,
        model=dict(type='ImageClassifier',
                   backbone=dict(type='ResNet', depth=18, base_channels=seed_channels,
                                 out_indices=(3, )),
                   neck=dict(type='GlobalAveragePooling'),
                   head=dict(type='BinaryClsHead', in_channels=seed_channels * 8)))


def _build(**kwargs):
    torch.manual_seed(0)
    cfg = dict(type='WeightedEnsembleClassifier',
               members=[_member('a'), _member('b', 4), _member('c')])
    cfg.update(kwargs)
    model = MODELS.build(cfg)
    model.init_weights()
    for m in model.members:  # make members disagree
        torch.nn.init.normal_(m.head.fc.weight, std=1.0)
    return model.eval()


def _inputs(n=3, size=32):
    g = torch.Generator().manual_seed(1)
    return [torch.randint(0, 255, (3, size, size), generator=g, dtype=torch.uint8)
            for _ in range(n)]


def _member_prob(member, inputs, flip=False):
    x = member.data_preprocessor(dict(inputs=inputs), False)['inputs']
    if flip:
        x = x.flip(-1)
    return torch.tensor(positive_probability(
        torch.stack([s.pred_score for s in member.predict(x)])), dtype=torch.float32)


def test_weighted_average_of_member_probabilities():
    weights = torch.tensor([0.5, 0.3, 0.2])
    model = _build(threshold=0.4, weights=weights.tolist())
    torch.testing.assert_close(model.weights, weights)
    inputs = _inputs()
    samples = [DataSample().set_gt_label(1) for _ in inputs]
    out = model.test_step(dict(inputs=inputs, data_samples=samples))
    per_member = torch.stack([_member_prob(m, inputs) for m in model.members], 1)
    expected = per_member @ weights
    for s, p, mp in zip(out, expected, per_member):
        torch.testing.assert_close(s.pred_score, torch.stack([1 - p, p]))
        assert int(s.pred_label) == int(p >= 0.4)
        torch.testing.assert_close(s.member_scores, mp)
        assert s.member_names == ['a', 'b', 'c']
        assert int(s.gt_label) == 1


def test_tta_hflip_averages_views():
    model = _build(tta=('hflip', ), weights=(1.0, 0.0, 0.0))
    inputs = _inputs(2)
    a = model.members[0]
    expected = (_member_prob(a, inputs) + _member_prob(a, inputs, flip=True)) / 2
    torch.testing.assert_close(model(inputs, mode='tensor'), expected)
    with pytest.raises(ValueError, match='unknown TTA'):
        _build(tta=('rot90', ))


def test_weights_file_and_leakage_guard(tmp_path):
    good = tmp_path / 'w.json'
    good.write_text(json.dumps(dict(weights=dict(a=0.5, b=0.25, c=0.25), threshold=0.61,
                                    source=dict(split='train', kind='out-of-fold'))))
    model = _build(weights_file=str(good))
    torch.testing.assert_close(model.weights, torch.tensor([0.5, 0.25, 0.25]))
    assert model.threshold == 0.61
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps(dict(weights=dict(a=1, b=1, c=1), threshold=0.5,
                                   source=dict(split='test'))))
    with pytest.raises(ValueError, match='test split'):
        _build(weights_file=str(bad))
    partial = tmp_path / 'partial.json'
    partial.write_text(json.dumps(dict(weights=dict(a=1.0), threshold=0.5)))
    with pytest.raises(ValueError, match='no weight'):
        _build(weights_file=str(partial))
    assert model.threshold_validated


def test_without_weights_file_equal_weights_and_unvalidated_threshold():
    """No weights file: equal weights (never the draft's leaked ones), threshold flagged."""
    model = _build()
    torch.testing.assert_close(model.weights, torch.full((3, ), 1 / 3))
    assert not model.threshold_validated
    out = model.test_step(dict(inputs=_inputs(2), data_samples=None))
    assert all(s.threshold_validated is False for s in out)
    single = MODELS.build(dict(type='WeightedEnsembleClassifier', members=[_member('a')]))
    torch.testing.assert_close(single.weights, torch.ones(1))


def test_draft_weights_only_by_named_opt_in():
    model = _build(weights=DRAFT_WEIGHTS_NAME)
    torch.testing.assert_close(model.weights, torch.tensor(DRAFT_WEIGHTS_CHOSEN_ON_TEST))
    assert not model.threshold_validated
    with pytest.raises(ValueError, match='draft-chosen-on-test'):
        _build(weights='draft')
    with pytest.raises(ValueError, match='three members'):
        MODELS.build(dict(type='WeightedEnsembleClassifier', weights=DRAFT_WEIGHTS_NAME,
                          members=[_member('a')]))


def test_shipped_ensemble_config_does_not_carry_the_draft_weights():
    from pathlib import Path

    from mmengine.config import Config
    cfg = Config.fromfile(str(Path(__file__).resolve().parents[3]
                              / 'configs/classifiers/ensemble_vindr-384.py'))
    assert cfg.model.get('weights') is None
    assert cfg.model.get('weights_file') is None


def test_combined_checkpoint_roundtrip_and_member_checkpoints(tmp_path):
    model = _build()
    inputs = _inputs(2)
    ref = model(inputs, mode='tensor')
    ckpt = save_ensemble_checkpoint(model, str(tmp_path / 'ens.pth'))
    fresh = _build()
    for m in fresh.members:
        torch.nn.init.normal_(m.head.fc.weight, std=1.0)
    assert not torch.allclose(fresh(inputs, mode='tensor'), ref)
    load_checkpoint(fresh, ckpt, strict=True)
    torch.testing.assert_close(fresh.eval()(inputs, mode='tensor'), ref)

    # a single member's checkpoint is refused for the ensemble ...
    member_ckpt = tmp_path / 'a.pth'
    torch.save(dict(state_dict=model.members[0].state_dict()), member_ckpt)
    with pytest.raises(ValueError, match='not an ensemble checkpoint'):
        load_checkpoint(fresh, str(member_ckpt))
    # ... but loads as a member checkpoint in the config, and init_weights keeps it
    torch.manual_seed(5)
    ens = MODELS.build(dict(type='WeightedEnsembleClassifier', weights=(1.0, ),
                            members=[_member('a', checkpoint=str(member_ckpt))]))
    ens.init_weights()
    for k, v in model.members[0].state_dict().items():
        torch.testing.assert_close(ens.members[0].state_dict()[k], v)
    with pytest.raises(NotImplementedError):
        ens.loss(inputs, [])


def _abnormal_logit(p):
    """Hand computation: log-odds of a member's predicted abnormal probability (float64)."""
    p = p.double()
    return torch.log(p) - torch.log1p(-p)


def test_logit_average_equals_hand_computation():
    """average='logit': views averaged in logit space, weighted mean of logits, then sigmoid."""
    weights = torch.tensor([0.5, 0.3, 0.2])
    model = _build(average='logit', weights=weights.tolist(), tta=('hflip', ), threshold=0.45)
    for m in model.members:  # logits within a few units: float32 probabilities do not saturate
        m.head.fc.weight.data.mul_(0.2)
    inputs = _inputs()
    # hand: every member's logit from its own predicted probability, per view
    member_logits = torch.stack([
        (_abnormal_logit(_member_prob(m, inputs)) + _abnormal_logit(_member_prob(m, inputs, True)))
        / 2 for m in model.members], 1)
    expected = torch.sigmoid(member_logits @ weights.double()).float()
    out = model.test_step(dict(inputs=inputs, data_samples=None))
    got = torch.stack([s.pred_score[1] for s in out])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model(inputs, mode='tensor'), expected, atol=1e-5, rtol=1e-5)
    for s, p, z in zip(out, expected, member_logits):
        torch.testing.assert_close(s.pred_score, torch.stack([1 - p, p]), atol=1e-5, rtol=1e-5)
        assert int(s.pred_label) == int(p >= 0.45)
        # member scores stay probabilities: each member's own (view-averaged logit) sigmoid
        torch.testing.assert_close(s.member_scores, torch.sigmoid(z).float(), atol=1e-5,
                                   rtol=1e-5)
    # the option changes the result: the probability average differs on these members
    prob_model = _build(weights=weights.tolist(), tta=('hflip', ))
    prob_model.load_state_dict(model.state_dict())
    assert not torch.allclose(prob_model(inputs, mode='tensor'), expected, atol=1e-4)
    with pytest.raises(ValueError, match="average="):
        _build(average='geometric')


def test_weights_file_must_be_searched_for_the_same_average(tmp_path):
    def write(name, **extra):
        path = tmp_path / name
        path.write_text(json.dumps(dict(weights=dict(a=0.5, b=0.25, c=0.25), threshold=0.6,
                                        source=dict(split='train'), **extra)))
        return str(path)

    logit_file = write('logit.json', average='logit')
    old_file = write('old.json')  # written before the option: a probability-average search
    assert _build(average='logit', weights_file=logit_file).threshold == 0.6
    assert _build(weights_file=old_file).average == 'prob'
    with pytest.raises(ValueError, match="average='logit'"):
        _build(weights_file=logit_file)
    with pytest.raises(ValueError, match="average='prob'"):
        _build(average='logit', weights_file=old_file)


def test_checkpoint_meta_records_the_average(tmp_path):
    model = _build(average='logit')
    ckpt = torch.load(save_ensemble_checkpoint(model, str(tmp_path / 'e.pth')),
                      weights_only=True)
    assert ckpt['meta']['average'] == 'logit'


def test_abnormal_logit_of_sigmoid_and_softmax_heads():
    z = torch.tensor([[-30.0], [0.5], [40.0]])
    torch.testing.assert_close(abnormal_logit(z), z[:, 0])  # exact where a probability saturates
    two = torch.tensor([[0.3, 1.2], [2.0, -1.0]])
    soft = two.double().softmax(1)
    torch.testing.assert_close(abnormal_logit(two).double(), torch.log(soft[:, 1] / soft[:, 0]))
    with pytest.raises(ValueError, match='1 \\(sigmoid\\) or 2'):
        abnormal_logit(torch.zeros(2, 7))
