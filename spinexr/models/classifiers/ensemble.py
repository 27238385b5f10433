"""``WeightedEnsembleClassifier``: weighted average of trained abnormality classifiers.

Two ways to combine the members (``average``): ``'prob'`` (default) averages their abnormal
probabilities; ``'logit'`` averages their abnormal log-odds and applies the sigmoid, as the
VinDr-SpineXR paper's DenseNet-121/169/201 ensemble does
(``configs/classifiers/ensemble-densenet_vindr-384.py``).

Checkpoints and ``tools/test.py``: the ensemble's ``state_dict`` is exactly its members' weights
under ``members.<i>.``. Members whose ``checkpoint`` is set in the config are loaded when the
model is built; ``tools/model_converters/ensemble_checkpoint.py`` builds it that way and saves the
combined checkpoint, which is the CHECKPOINT argument of ``tools/test.py``::

    python tools/model_converters/ensemble_checkpoint.py \\
        configs/classifiers/ensemble_vindr-384.py \\
        --cfg-options model.members.0.checkpoint=A.pth model.members.1.checkpoint=B.pth \\
                      model.members.2.checkpoint=C.pth --out work_dirs/ensemble.pth
    python tools/test.py configs/classifiers/ensemble_vindr-384.py work_dirs/ensemble.pth

A checkpoint without any ``members.`` key (e.g. a single member's) is refused, so it cannot be
passed by mistake and silently load nothing.

Weights and threshold must come from validation data: ``weights_file`` is the json written by
``tools/search_ensemble.py`` on out-of-fold predictions; files marked as chosen on a test split
are refused. Without a weights file the members get equal weights and the operating threshold is
marked as not validated (a warning, and ``threshold_validated=False`` on every prediction, which
:class:`~spinexr.evaluation.metrics.BinaryClsMetric` reports). The weights of the paper draft this
project started from were chosen on the test labels; they are available only under the name that
says so, ``weights='draft-chosen-on-test'``, for reproducing that draft, never for a result.
"""
import copy
import json
import os.path as osp
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.logging import MMLogger
from mmpretrain.models.classifiers import BaseClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from spinexr.evaluation.roc import positive_probability
from spinexr.utils.paths import config_path

#: The paper draft's weights for (DenseNet-121, EfficientNetV2-S, ResNet-50). The draft chose
#: them (and its threshold) on the TEST labels, so any test figure computed with them is leaked.
#: Reachable only by the explicit opt-in ``weights=DRAFT_WEIGHTS_NAME``.
DRAFT_WEIGHTS_CHOSEN_ON_TEST = (0.42, 0.32, 0.26)

#: The value of ``weights`` that selects :data:`DRAFT_WEIGHTS_CHOSEN_ON_TEST`.
DRAFT_WEIGHTS_NAME = 'draft-chosen-on-test'

#: How members are combined: abnormal probabilities, or abnormal log-odds (then sigmoid).
AVERAGES = ('prob', 'logit')

#: Test-time augmentations applied to the normalised batch ``(N, C, H, W)``.
TTA_OPS = {
    'hflip': lambda x: torch.flip(x, dims=[-1]),
    'vflip': lambda x: torch.flip(x, dims=[-2]),
}


def _resolve_path(path: str) -> str:
    """A member config as given when it is a file, else a shipped config
    (:func:`spinexr.utils.paths.config_path`: ``configs/x/y.py`` from any folder); a name that
    is neither comes back unchanged (:func:`build_member` reports it)."""
    try:
        return config_path(path)
    except FileNotFoundError:
        return path


def build_member(spec: dict) -> nn.Module:
    """Build one member classifier from ``dict(config=...)`` or ``dict(model=...)``.

    The member's top-level ``data_preprocessor`` (mmpretrain configs keep it there) is merged into
    its model config, so each member normalises the raw batch its own way.
    """
    if 'model' in spec:
        model_cfg = copy.deepcopy(dict(spec['model']))
        data_preprocessor = spec.get('data_preprocessor')
    elif 'config' in spec:
        path = _resolve_path(spec['config'])
        if not osp.isfile(path):
            raise FileNotFoundError(f'ensemble member config not found: {spec["config"]}')
        cfg = Config.fromfile(path)
        model_cfg = copy.deepcopy(cfg.model)
        data_preprocessor = cfg.get('data_preprocessor')
    else:
        raise ValueError(f'ensemble member needs "config" or "model": {spec}')
    if isinstance(model_cfg, ConfigDict):
        model_cfg = model_cfg.to_dict()
    if data_preprocessor is not None and model_cfg.get('data_preprocessor') is None:
        model_cfg['data_preprocessor'] = copy.deepcopy(dict(data_preprocessor))
    # Members are mmpretrain models whatever the caller's default scope is (e.g. 'mmdet').
    model_cfg.setdefault('_scope_', 'mmpretrain')
    return MODELS.build(model_cfg)


def _load_member_checkpoint(model: nn.Module, checkpoint: str) -> None:
    """Load a member checkpoint with the project's safe loader."""
    from spinexr.engine.checkpoint import load_checkpoint
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'ensemble member checkpoint not found: {checkpoint}')
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True)


def abnormal_logit(scores: torch.Tensor) -> torch.Tensor:
    """Abnormal log-odds ``(N,)`` from a member's raw head output (``mode='tensor'``).

    One column (:class:`~spinexr.models.heads.BinaryClsHead`, sigmoid): the logit itself. Two
    columns (a softmax head over normal, abnormal): ``z_abnormal - z_normal``, the log-odds of the
    softmax probability. Either way ``sigmoid`` of the result is the member's predicted abnormal
    probability, without the saturation of recovering it from a float32 probability.
    """
    if scores.dim() != 2 or scores.shape[1] not in (1, 2):
        raise ValueError('average="logit" needs members whose head outputs 1 (sigmoid) or 2 '
                         f'(softmax normal/abnormal) scores per image, got {tuple(scores.shape)}')
    return scores[:, 0] if scores.shape[1] == 1 else scores[:, 1] - scores[:, 0]


def read_weights_file(path: str, names: Sequence[str]) -> Dict[str, object]:
    """Read weights (in ``names`` order), threshold and averaging mode from a search json.

    The json is written by ``tools/search_ensemble.py``; a file without ``average`` (written
    before the option existed) was searched on the probability average: ``'prob'``.

    Raises:
        ValueError: The file says it was chosen on a test split, or lacks a member.
    """
    with open(path, encoding='utf-8') as f:
        payload = json.load(f)
    source = payload.get('source', {})
    if str(source.get('split', '')).lower() == 'test':
        raise ValueError(f'{path}: weights were chosen on the test split; refusing (leakage)')
    weights = payload.get('weights', {})
    missing = [n for n in names if n not in weights]
    if missing:
        raise ValueError(f'{path}: no weight for member(s) {missing}; it has {sorted(weights)}')
    return dict(weights=[float(weights[n]) for n in names],
                threshold=float(payload['threshold']),
                average=str(payload.get('average', 'prob')))


@MODELS.register_module()
class WeightedEnsembleClassifier(BaseClassifier):
    """Weighted average of member classifiers' abnormal probabilities or logits.

    ``average='prob'`` (DERNet-style): ``p = sum_i w_i * p_i / sum_i w_i``, where ``p_i`` is
    member ``i``'s abnormal probability averaged over the identity view and the ``tta`` views.
    ``average='logit'`` (the VinDr-SpineXR paper): every member's abnormal logit ``z_i`` (see
    :func:`abnormal_logit`) is averaged over the views *in logit space*, then
    ``p = sigmoid(sum_i w_i * z_i / sum_i w_i)``; ``member_scores`` are then
    ``sigmoid(z_i)``. Predictions carry ``pred_score = [1 - p, p]``,
    ``pred_label = p >= threshold`` and, for the per-member ROC analysis, ``member_scores``
    (tensor) with ``member_names`` (metainfo).

    The raw batch is passed to every member's own data preprocessor (each member normalises as
    it was trained), so the ensemble's own preprocessor should only move data to the device:
    mmengine's ``BaseDataPreprocessor`` (the default).

    Args:
        members (Sequence[dict]): ``dict(name=..., config=CONFIG, checkpoint=CKPT or None)`` or
            ``dict(name=..., model=MODEL_CFG, data_preprocessor=..., checkpoint=...)``.
        weights (Sequence[float] | str, optional): One weight per member. ``None`` (default):
            equal weights. The string ``'draft-chosen-on-test'`` selects the paper draft's
            (0.42, 0.32, 0.26) for three members, which were chosen on the test labels: an
            explicit opt-in for reproducing the draft only (a warning says so).
        threshold (float): Operating threshold of ``pred_label``. Defaults to 0.5. Only a
            threshold read from ``weights_file`` counts as validated.
        weights_file (str, optional): Json from ``tools/search_ensemble.py``; its weights (by
            member name) and threshold replace ``weights`` and ``threshold``. The only source
            of a validated operating point.
        tta (Sequence[str]): Test-time augmentations from :data:`TTA_OPS`, e.g. ``('hflip',)``.
        average (str): ``'prob'`` (default) or ``'logit'``, see above. A ``weights_file`` must
            have been searched for the same mode (its ``average``), else it is refused: its
            weights and threshold belong to another combination.
        data_preprocessor (dict, optional): Defaults to ``BaseDataPreprocessor``.
        init_cfg (dict, optional): Unused; members are initialised by their checkpoints.
    """

    def __init__(self,
                 members: Sequence[dict],
                 weights: Union[None, str, Sequence[float]] = None,
                 threshold: float = 0.5,
                 weights_file: Optional[str] = None,
                 tta: Sequence[str] = (),
                 average: str = 'prob',
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='BaseDataPreprocessor')
        super().__init__(init_cfg=init_cfg, data_preprocessor=data_preprocessor)
        if not members:
            raise ValueError('WeightedEnsembleClassifier needs at least one member')
        self.member_names: List[str] = [
            str(m.get('name', f'member{i}')) for i, m in enumerate(members)]
        if len(set(self.member_names)) != len(self.member_names):
            raise ValueError(f'member names must be unique: {self.member_names}')
        if average not in AVERAGES:
            raise ValueError(f'average={average!r}: choose from {AVERAGES}')
        self.average = average
        logger = MMLogger.get_current_instance()
        #: Whether weights and threshold come from validation data (a ``weights_file``).
        self.threshold_validated = weights_file is not None
        if weights_file is not None:
            loaded = read_weights_file(weights_file, self.member_names)
            if loaded['average'] != average:
                raise ValueError(
                    f"{weights_file}: weights and threshold were searched for "
                    f"average={loaded['average']!r}, but this ensemble has average={average!r}; "
                    f'rerun tools/search_ensemble.py with --average {average}')
            weights, threshold = loaded['weights'], loaded['threshold']
        elif isinstance(weights, str):
            if weights != DRAFT_WEIGHTS_NAME:
                raise ValueError(f'weights={weights!r}: give numbers, None (equal weights) or '
                                 f'{DRAFT_WEIGHTS_NAME!r}')
            if len(members) != len(DRAFT_WEIGHTS_CHOSEN_ON_TEST):
                raise ValueError(f'{DRAFT_WEIGHTS_NAME!r} weights are for three members '
                                 f'(DenseNet-121, EfficientNetV2-S, ResNet-50), got '
                                 f'{len(members)}')
            weights = DRAFT_WEIGHTS_CHOSEN_ON_TEST
            logger.warning(
                f'WeightedEnsembleClassifier: using the paper draft\'s weights '
                f'{DRAFT_WEIGHTS_CHOSEN_ON_TEST}, which were chosen on the TEST labels. Test '
                'figures computed with them are leaked; use them only to reproduce the draft.')
        elif weights is None:
            weights = [1.0] * len(members)
        if weights_file is None:
            logger.warning(
                'WeightedEnsembleClassifier: no weights_file (tools/search_ensemble.py); '
                f'weights {list(weights)} and threshold {float(threshold)} are NOT validated: '
                'sensitivity, specificity and F1 at this threshold are not an operating point '
                'chosen on validation data (AUROC does not depend on it).')
        if len(weights) != len(members) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f'need {len(members)} non-negative weights with a positive sum, '
                             f'got {list(weights)}')
        unknown = [t for t in tta if t not in TTA_OPS]
        if unknown:
            raise ValueError(f'unknown TTA {unknown}; choose from {sorted(TTA_OPS)}')
        self.tta = tuple(tta)
        self.threshold = float(threshold)
        self.register_buffer('weights', torch.tensor(
            [float(w) / float(sum(weights)) for w in weights]), persistent=False)
        self.members = nn.ModuleList(build_member(m) for m in members)
        self._checkpoints = [m.get('checkpoint') for m in members]
        for model, ckpt in zip(self.members, self._checkpoints):
            if ckpt:
                _load_member_checkpoint(model, ckpt)
        self._has_weights = any(self._checkpoints)
        logger.info(
            'WeightedEnsembleClassifier: ' + ', '.join(
                f'{n}={w:.3f}' for n, w in zip(self.member_names, self.weights.tolist()))
            + f', threshold={self.threshold:.4f}, tta={list(self.tta)}, average={self.average}')

    def init_weights(self) -> None:
        """Initialise only members without a checkpoint (loaded weights are kept)."""
        for model, ckpt in zip(self.members, self._checkpoints):
            if not ckpt:
                model.init_weights()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        """Refuse a checkpoint that holds no ``members.`` weights (e.g. one member's)."""
        if not any(k.startswith(prefix + 'members.') for k in state_dict):
            raise ValueError(
                'this checkpoint is not an ensemble checkpoint (no "members." keys); write one '
                'with tools/model_converters/ensemble_checkpoint.py')
        self._has_weights = True
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, inputs, data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        """``'predict'`` -> data samples; ``'tensor'`` -> ensemble probabilities ``(N,)``."""
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._combine(self._member_views_mean(inputs))
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}".')

    def extract_feat(self, inputs):
        """Not defined for an ensemble of different backbones."""
        raise NotImplementedError('WeightedEnsembleClassifier has no single feature extractor')

    def loss(self, inputs, data_samples) -> dict:
        """The ensemble is not trained; train its members with their own configs."""
        raise NotImplementedError('train the members (tools/train.py on their configs), '
                                  'then search the weights with tools/search_ensemble.py')

    @torch.no_grad()
    def _member_views_mean(self, inputs: Union[torch.Tensor, List[torch.Tensor]]
                           ) -> torch.Tensor:
        """Every member's score averaged over the views: ``(N, num_members)``.

        Abnormal probabilities for ``average='prob'``, abnormal logits for ``'logit'``.
        """
        columns = []
        for model in self.members:
            batch = model.data_preprocessor(dict(inputs=inputs, data_samples=None), False)
            x = batch['inputs']
            views = [x] + [TTA_OPS[name](x) for name in self.tta]
            if self.average == 'logit':
                scores = [abnormal_logit(model(v, mode='tensor')).float() for v in views]
            else:
                scores = [torch.as_tensor(positive_probability(torch.stack(
                    [s.pred_score for s in model.predict(v)])), dtype=torch.float32)
                    for v in views]
            columns.append(torch.stack(scores).mean(0))
        return torch.stack(columns, dim=1).to(self.weights.device)

    def _combine(self, member_scores: torch.Tensor) -> torch.Tensor:
        """Ensemble abnormal probability ``(N,)`` from :meth:`_member_views_mean`'s scores."""
        mean = member_scores @ self.weights
        return torch.sigmoid(mean) if self.average == 'logit' else mean

    @torch.no_grad()
    def member_probabilities(self, inputs: Union[torch.Tensor, List[torch.Tensor]]
                             ) -> torch.Tensor:
        """Abnormal probability of every member, TTA-averaged: ``(N, num_members)``.

        With ``average='logit'`` the views are averaged in logit space: ``sigmoid(mean z)``.
        """
        scores = self._member_views_mean(inputs)
        return torch.sigmoid(scores) if self.average == 'logit' else scores

    @torch.no_grad()
    def predict(self, inputs, data_samples: Optional[List[DataSample]] = None
                ) -> List[DataSample]:
        """Weighted ensemble prediction for a batch."""
        if not self._has_weights:
            MMLogger.get_current_instance().warning(
                'WeightedEnsembleClassifier: no member checkpoint was loaded; predicting with '
                'randomly initialised members')
            self._has_weights = True  # warn once
        scores = self._member_views_mean(inputs)
        prob = self._combine(scores)
        member_probs = torch.sigmoid(scores) if self.average == 'logit' else scores
        if data_samples is None:
            data_samples = [DataSample() for _ in range(prob.numel())]
        for sample, p, mp in zip(data_samples, prob, member_probs):
            sample.set_pred_score(torch.stack([1 - p, p]))
            sample.set_pred_label(int(p >= self.threshold))
            sample.set_field(mp.clone(), 'member_scores')
            sample.set_field(list(self.member_names), 'member_names', field_type='metainfo')
            sample.set_field(self.threshold_validated, 'threshold_validated',
                             field_type='metainfo')
        return data_samples


def save_ensemble_checkpoint(model: WeightedEnsembleClassifier, out_file: str) -> str:
    """Save the ensemble's weights (all members) as a checkpoint ``tools/test.py`` loads.

    Only tensors and plain Python values are stored, so it loads with ``weights_only=True``.
    """
    meta = dict(members=list(model.member_names), weights=model.weights.tolist(),
                threshold=model.threshold, threshold_validated=model.threshold_validated,
                tta=list(model.tta), average=model.average)
    Path(out_file).parent.mkdir(parents=True, exist_ok=True)
    torch.save(dict(state_dict={k: v.cpu() for k, v in model.state_dict().items()},
                    meta=meta), out_file)
    return out_file
