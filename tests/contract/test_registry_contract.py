"""Every component spinexr registers is built and exercised (timm's registry-driven test).

The registrations are not listed here: they are found by importing every module of ``spinexr``
and walking mmengine's registry tree (mmengine's root registries and their mmdet / mmpretrain
children) for objects defined under ``spinexr.`` (``_contract_helpers.py``). Each one is looked up
in :data:`CASES`, a table keyed by registered name and joined from one table per kind:
``_cases_data.py`` (transforms, datasets, sampler, collate), ``_cases_models.py`` (data
preprocessors, detectors, TTA, heads, losses, classifier ensemble) and ``_cases_engine.py``
(metrics, optimizer wrappers, EMA, runner, hooks, detection ensemble). A registration without a
case fails ``test_component`` with a message naming it
(``test_a_registration_without_a_case_is_named`` shows that with a dummy). Each case builds the
component from a minimal config through the registry it was found in and runs it by kind: a
transform on a small sample, a sampler's indices, a model's loss and predict on a tiny batch, a
metric on a tiny set, a hook / optimizer wrapper / EMA / runner in a short toy run (the
``toy_run`` fixture of ``conftest.py``), a loss on tensors.
"""
from typing import Callable, Dict

import pytest

from contract import _cases_data, _cases_engine, _cases_models
from contract._contract_helpers import (import_everything, merge_cases, missing_cases,
                                        registered)

import_everything()
ENTRIES = registered()

#: Registered name -> case. A name registered in several registries (mmdet's and mmpretrain's)
#: runs its case once per registry.
CASES: Dict[str, Callable] = merge_cases(_cases_data.CASES, _cases_models.CASES,
                                         _cases_engine.CASES)


@pytest.mark.parametrize('entry', ENTRIES, ids=[e.id for e in ENTRIES])
def test_component(entry, request):
    if entry.name not in CASES:
        pytest.fail(missing_cases([entry], CASES)[0])
    CASES[entry.name](entry, request)


def test_the_newer_components_are_found():
    """The walk finds what the recipes use, in the registries the configs resolve them from."""
    ids = {e.id for e in ENTRIES}
    assert {
        'mmdet.transform.YOLORandomAffine', 'mmdet.transform.YOLOCachedMosaic',
        'mmdet.transform.FitMosaicCanvas', 'mmdet.transform.UltralyticsHSVRandomAug',
        'mmdet.model.YOLOBatchSyncRandomResize', 'mmdet.model.YOLOModelEMA',
        'mmdet.optim_wrapper.YOLOOptimWrapper', 'mmdet.optim_wrapper.YOLOAmpOptimWrapper',
        'mmengine.function.yolo_collate', 'mmdet.dataset.VinDrSpineXRDataset',
        'mmpretrain.dataset.VinDrSpineXRClsDataset', 'mmdet.data_sampler.ClassBalancedSampler',
        'mmpretrain.data_sampler.ClassBalancedSampler', 'mmdet.transform.BoxCopyPaste',
        'mmpretrain.model.BinaryFocalLoss', 'mmpretrain.model.WeightedEnsembleClassifier',
        'mmdet.metric.VinDrDetMetric', 'mmpretrain.metric.BinaryClsMetric',
        'mmdet.hook.YOLOEMAHook', 'mmengine.runner.SpinexrRunner',
    } <= ids


def test_every_case_names_a_registration():
    """No stale cases: every key of CASES is still registered somewhere."""
    assert sorted(set(CASES) - {e.name for e in ENTRIES}) == []


def test_a_registration_without_a_case_is_named():
    """A component registered under spinexr without a case is reported by name."""
    from mmdet.registry import TRANSFORMS

    class Dummy:
        pass

    Dummy.__module__ = 'spinexr.datasets.transforms.dummy'
    TRANSFORMS.register_module(name='ContractDummyTransform', module=Dummy)
    try:
        found = [e for e in registered() if e.name == 'ContractDummyTransform']
        assert [e.id for e in found] == ['mmdet.transform.ContractDummyTransform']
        (message, ) = missing_cases(found, CASES)
        assert 'mmdet.transform.ContractDummyTransform' in message
        assert 'has no contract case' in message
        assert missing_cases([e for e in ENTRIES], CASES) == []
    finally:
        TRANSFORMS.module_dict.pop('ContractDummyTransform', None)
    assert not [e for e in registered() if e.name == 'ContractDummyTransform']
