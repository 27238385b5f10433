"""The classifier part of the main job: CV -> weight search -> members -> ensemble -> table rows.

On the converted phantom (or any converted release) it runs, each step in a child process started
by :func:`spinexr.utils.process.run_command` (``python -m spinexr.cli.<command>``):

1. ``cross_validate`` (:func:`spinexr.experiments.cross_validation.cross_validate`): the three
   members over study-grouped folds of the train split,
   collecting out-of-fold predictions;
2. ``search_ensemble`` (:func:`spinexr.models.classifiers.ensemble_search.search_ensemble`):
   ensemble weights (0.05 grid) and threshold (Youden's J) on those
   out-of-fold predictions only (the test annotation file is passed so that any test image in
   them is refused);
3. ``train`` for each member on the train split (validating on a train fold);
4. ``ensemble_checkpoint`` (:func:`write_ensemble_checkpoint`) + ``test``: the ensemble evaluated
   on the test split with the searched weights and threshold;
5. :func:`spinexr.analysis.classifier_report.classifier_rows`: AUROC, sensitivity,
   specificity, F1 (with bootstrap CIs) of the ensemble and of each member, as rows of the
   comparison table, plus ROC curves; and :func:`~spinexr.analysis.classifier_report.study_rows`:
   the same per study (views aggregated by ``study_rule``).

Each step is skipped when its output exists, so an interrupted main job continues.
"""
import glob
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence

from spinexr.utils.paths import config_path
from spinexr.utils.process import run_command

#: Member names and configs, in the ensemble's order.
MEMBERS = (
    ('densenet121', 'configs/classifiers/densenet121_60e_vindr-384.py'),
    ('efficientnetv2-s', 'configs/classifiers/efficientnetv2-s_60e_vindr-384.py'),
    ('resnet50', 'configs/classifiers/resnet50_60e_vindr-384.py'),
)
ENSEMBLE_CONFIG = 'configs/classifiers/ensemble_vindr-384.py'


def _loader_options(data_root: str, img_size: int, batch_size: int,
                    splits: Sequence[str] = ('train', 'val', 'test')) -> List[str]:
    """``--cfg-options`` that point the classifier dataloaders at ``data_root`` and a small size."""
    opts = []
    for split in splits:
        key = f'{split}_dataloader'
        opts += [f'{key}.dataset.data_root={data_root}', f'{key}.batch_size={batch_size}',
                 f'{key}.num_workers=0', f'{key}.persistent_workers=False',
                 f'{key}.dataset.pipeline.1.scale=({img_size},{img_size})']
    return opts


def _schedule_options(epochs: int, seed: int = 0) -> List[str]:
    """``--cfg-options`` for every member run: ``epochs`` of the cosine schedule and a fixed seed
    (without one mmengine draws a random seed per run and the chain's numbers change run to run).
    """
    return [f'train_cfg.max_epochs={epochs}', f'param_scheduler.0.T_max={epochs}',
            f'param_scheduler.0.end={epochs}', 'default_hooks.logger.interval=5',
            f'randomness.seed={seed}']


def _member_checkpoint(work_dir: str) -> str:
    """The member's best checkpoint (selected on its validation fold), else the last one."""
    best = sorted(glob.glob(osp.join(work_dir, 'best_*.pth')), key=osp.getmtime)
    if best:
        return best[-1]
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def write_ensemble_checkpoint(config: str, out: str,
                              cfg_options: Optional[dict] = None) -> str:
    """Write the combined checkpoint of a ``WeightedEnsembleClassifier`` config.

    The checkpoint holds every member's weights (each member loads its own ``checkpoint``); it
    is the CHECKPOINT argument of ``python -m spinexr.cli.test`` for the ensemble.

    Args:
        config (str): Ensemble config (a file or a shipped config name).
        out (str): Output ``.pth``.
        cfg_options (dict, optional): Overrides, e.g. ``{'model.members.0.checkpoint': PATH}``.

    Returns:
        str: ``out``.

    Raises:
        ValueError: When a member has no checkpoint.
    """
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(config_path(config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    from mmpretrain.registry import MODELS

    from spinexr.models.classifiers.ensemble import save_ensemble_checkpoint
    missing = [m.get('name', i) for i, m in enumerate(cfg.model.members) if not m.get('checkpoint')]
    if missing:
        raise ValueError(f'members without checkpoint: {missing}; set '
                         'model.members.<i>.checkpoint=PATH')
    save_ensemble_checkpoint(MODELS.build(cfg.model), out)
    return out


def run_classifier_chain(work_dir: str,
                         data_root: str,
                         run: Callable[..., float] = run_command,
                         img_size: int = 64,
                         epochs: int = 2,
                         n_splits: int = 2,
                         batch_size: int = 16,
                         n_bootstrap: int = 1000,
                         study_rule: Optional[str] = 'max') -> Dict[str, object]:
    """Run the classifier chain and return its comparison-table rows.

    Args:
        work_dir (str): Folder for the chain's outputs (``WORK/classifiers``).
        data_root (str): Converted dataset root (with ``annotations/{train,test}.json``).
        run (Callable): ``run(command, args, log_file=...) -> seconds``, raising on failure
            (default :func:`spinexr.utils.process.run_command`).
        img_size (int): Square input size of the members.
        epochs (int): Training epochs of every member run.
        n_splits (int): Number of study-grouped folds for the out-of-fold predictions.
        batch_size (int): Batch size of every loader.
        n_bootstrap (int): Bootstrap replicates for the CIs.
        study_rule (str, optional): Also add study-level rows (one per model, the views of a
            study aggregated by this rule of :mod:`spinexr.evaluation.study_level`, threshold:
            the search json's study-level Youden threshold); None: image rows only.

    Returns:
        dict: ``rows`` (table rows, fractions, keys of
        :data:`spinexr.analysis.report.CLASSIFIER_COLUMNS`), ``search`` (the searched weights
        json), ``roc`` (ROC curve PNG).
    """
    from spinexr.analysis.classifier_report import (classifier_rows, has_study_ids,
                                                    plot_roc_curves, study_rows)
    root = data_root.rstrip('/') + '/'
    os.makedirs(work_dir, exist_ok=True)
    names = [n for n, _ in MEMBERS]
    configs = [config_path(c) for _, c in MEMBERS]
    ensemble_config = config_path(ENSEMBLE_CONFIG)
    loaders = _loader_options(root, img_size, batch_size)
    schedule = _schedule_options(epochs)
    log = lambda name: osp.join(work_dir, f'{name}.log')  # noqa: E731

    cv_dir = osp.join(work_dir, 'cv')
    oof = osp.join(cv_dir, 'oof_predictions.csv')
    if not osp.isfile(oof):
        run('cross_validate', [*configs, '--names', *names, '--n-splits', str(n_splits),
                               '--seed', '0', '--work-dir', cv_dir, '--cfg-options', *loaders,
                               *schedule], log_file=log('cross_validate'))
    search = osp.join(cv_dir, 'ensemble_search.json')
    if not osp.isfile(search):
        run('search_ensemble', [oof, '--members', *names, '--test-ann-file',
                                root + 'annotations/test.json', '--out', search],
            log_file=log('search_ensemble'))

    checkpoints = []
    for name, config in zip(names, configs):
        member_dir = osp.join(work_dir, name)
        if not osp.isfile(osp.join(member_dir, 'last_checkpoint')):
            run('train', [config, '--work-dir', member_dir, '--cfg-options', *loaders, *schedule],
                log_file=log(f'train_{name}'))
        checkpoints.append(_member_checkpoint(member_dir))

    ensemble_ckpt = osp.join(work_dir, 'ensemble.pth')
    if not osp.isfile(ensemble_ckpt):
        run('ensemble_checkpoint', [
            ensemble_config, '--out', ensemble_ckpt, '--cfg-options',
            *[f'model.members.{i}.checkpoint={c}' for i, c in enumerate(checkpoints)]],
            log_file=log('ensemble_checkpoint'))
    test_dir = osp.join(work_dir, 'ensemble_test')
    predictions = osp.join(test_dir, 'test_predictions.csv')
    if not osp.isfile(predictions):
        run('test', [ensemble_config, ensemble_ckpt, '--work-dir', test_dir, '--cfg-options',
                     f'model.weights_file={search}', f'test_evaluator.threshold={search}',
                     f'test_evaluator.prediction_file={predictions}',
                     *_loader_options(root, img_size, batch_size, splits=('test', ))],
            log_file=log('test_ensemble'))

    rows = []
    image_rows = classifier_rows(predictions, thresholds=search, n_bootstrap=n_bootstrap)
    by_study = []
    if study_rule and has_study_ids(predictions):
        by_study = study_rows(predictions, rule=study_rule, thresholds=search,
                              n_bootstrap=n_bootstrap)
    for r in image_rows + by_study:
        ci = ', '.join(f'{k} {r[k + "_ci"][0]:.1f}-{r[k + "_ci"][1]:.1f}'
                       for k in ('auroc', 'sensitivity', 'specificity', 'f1')
                       if r.get(k + '_ci') is not None)
        name = r['model'] if r['model'] != 'ensemble' else 'ensemble (weights+threshold on OOF)'
        level = ''
        if r.get('level') == 'study':
            name = f"{r['model']} [study, {r['rule']}]"
            level = (f"{r['n_studies']} studies, views aggregated by {r['rule']}, threshold: "
                     f"{r['threshold_source']}; ")
        rows.append(dict(
            model=name, AUROC=r['auroc'] / 100, sensitivity=r['sensitivity'] / 100,
            specificity=r['specificity'] / 100, F1=r['f1'] / 100,
            notes=(f'classifier, {img_size} px, {epochs} epochs, {level}threshold '
                   f'{r["threshold"]:.3f}; 95% CI: {ci}')))
    roc = osp.join(work_dir, 'roc_curves.png')
    plot_roc_curves(predictions, roc)
    return dict(rows=rows, search=search, roc=roc)
