"""The classifier part of the main job: CV -> weight search -> members -> ensembles -> table rows.

On the converted phantom (or any converted release) it runs, each step in a child process started
by :func:`spinexr.utils.process.run_command` (``python -m spinexr.cli.<command>``):

1. ``cross_validate`` (:func:`spinexr.experiments.cross_validation.cross_validate`): every member
   of every ensemble (:data:`MEMBERS`, each once) over the same study-grouped folds of the train
   split, collecting out-of-fold predictions;
2. ``search_ensemble`` (:func:`spinexr.models.classifiers.ensemble_search.search_ensemble`) per
   ensemble of :data:`ENSEMBLES`: weights (0.05 grid) and threshold (Youden's J) on those
   out-of-fold predictions only, for the ensemble's own ``average`` (the test annotation file is
   passed so that any test image in them is refused);
3. ``train`` for each member on the train split (validating on a train fold), once, shared by the
   ensembles that use it;
4. per ensemble ``ensemble_checkpoint`` (:func:`write_ensemble_checkpoint`) + ``test``: the
   ensemble evaluated on the test split with its searched weights and threshold;
5. :func:`spinexr.analysis.classifier_report.classifier_rows`: AUROC, sensitivity,
   specificity, F1 (with bootstrap CIs) of each ensemble and of each member (a member shared by
   two ensembles gets one row), as rows of the comparison table, plus ROC curves; and
   :func:`~spinexr.analysis.classifier_report.study_rows`: the same per study (views aggregated
   by ``study_rule``).

The two ensembles (:data:`ENSEMBLES`): the project's DenseNet-121 + EfficientNetV2-S + ResNet-50
probability average, and the VinDr-SpineXR paper's DenseNet-121/169/201 logit average. DenseNet-121
is trained once for both.

Each step is skipped when its output exists, so an interrupted main job continues (and a job
finished before an ensemble was added runs only what the new one needs).
"""
import csv
import glob
import os
import os.path as osp
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

from spinexr.utils.paths import config_path
from spinexr.utils.process import run_command

#: Every member any ensemble of the chain uses (name, config), each trained once.
MEMBERS = (
    ('densenet121', 'configs/classifiers/densenet121_60e_vindr-384.py'),
    ('efficientnetv2-s', 'configs/classifiers/efficientnetv2-s_60e_vindr-384.py'),
    ('resnet50', 'configs/classifiers/resnet50_60e_vindr-384.py'),
    ('densenet169', 'configs/classifiers/densenet169_60e_vindr-384.py'),
    ('densenet201', 'configs/classifiers/densenet201_60e_vindr-384.py'),
)
ENSEMBLE_CONFIG = 'configs/classifiers/ensemble_vindr-384.py'


class EnsembleEntry(NamedTuple):
    """One ensemble of the chain.

    Attributes:
        key (str): Short name; the outputs are ``cv/<key>_search.json``, ``<key>.pth`` and
            ``<key>_test/`` (the first ensemble keeps the older names ``cv/ensemble_search.json``,
            ``ensemble.pth``, ``ensemble_test/``).
        config (str): Its ``WeightedEnsembleClassifier`` config.
        members (tuple[str, ...]): Member names of :data:`MEMBERS`, in the config's order.
        average (str): The config's ``model.average`` (``'prob'`` or ``'logit'``); the weight
            search is run for it.
        label (str): The ensemble's name in the table.
    """
    key: str
    config: str
    members: tuple
    average: str
    label: str


#: The chain's ensembles, in table order.
ENSEMBLES = (
    EnsembleEntry('ensemble', ENSEMBLE_CONFIG, ('densenet121', 'efficientnetv2-s', 'resnet50'),
                  'prob', 'ensemble'),
    EnsembleEntry('densenet-paper', 'configs/classifiers/ensemble-densenet_vindr-384.py',
                  ('densenet121', 'densenet169', 'densenet201'), 'logit',
                  'DenseNet-121/169/201 paper ensemble, logit average'),
)


def _paths(work_dir: str, entry: EnsembleEntry) -> Dict[str, str]:
    """Where one ensemble's search json, checkpoint and test predictions live."""
    stem = 'ensemble' if entry.key == 'ensemble' else entry.key
    return dict(search=osp.join(work_dir, 'cv', f'{stem}_search.json'),
                checkpoint=osp.join(work_dir, f'{stem}.pth'),
                test_dir=osp.join(work_dir, f'{stem}_test'),
                roc=osp.join(work_dir, 'roc_curves.png' if stem == 'ensemble'
                             else f'roc_curves_{stem}.png'))


def _oof_has(oof: str, names: Sequence[str]) -> bool:
    """Whether the out-of-fold table exists and has a ``prob_<name>`` column for every name."""
    if not osp.isfile(oof):
        return False
    with open(oof, newline='', encoding='utf-8') as f:
        header = next(csv.reader(f), [])
    return all(f'prob_{n}' in header for n in names)


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
                         study_rule: Optional[str] = 'max',
                         ensembles: Optional[Sequence[str]] = None) -> Dict[str, object]:
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
        ensembles (Sequence[str], optional): Keys of :data:`ENSEMBLES` to run (default: all);
            only their members are trained.

    Returns:
        dict: ``rows`` (table rows, fractions, keys of
        :data:`spinexr.analysis.report.CLASSIFIER_COLUMNS`: the image rows of every ensemble,
        each followed by its members not reported before, then the study rows in the same
        order), ``search`` and ``roc`` (the first ensemble's searched
        weights json and ROC curve PNG), ``searches`` and ``rocs`` (the same per ensemble key).

    Raises:
        ValueError: For an unknown ensemble key.
    """
    from spinexr.analysis.classifier_report import has_study_ids, plot_roc_curves
    known = {e.key: e for e in ENSEMBLES}
    keys = list(ensembles) if ensembles is not None else list(known)
    unknown = [k for k in keys if k not in known]
    if unknown or not keys:
        raise ValueError(f'unknown ensembles {unknown or keys}; choose from {list(known)}')
    chosen = [known[k] for k in keys]
    root = data_root.rstrip('/') + '/'
    os.makedirs(work_dir, exist_ok=True)
    configs = dict(MEMBERS)
    names = [n for n, _ in MEMBERS if any(n in e.members for e in chosen)]
    loaders = _loader_options(root, img_size, batch_size)
    schedule = _schedule_options(epochs)
    log = lambda name: osp.join(work_dir, f'{name}.log')  # noqa: E731

    # 1. one cross-validation of every member (folds finished before are reused)
    cv_dir = osp.join(work_dir, 'cv')
    oof = osp.join(cv_dir, 'oof_predictions.csv')
    if not _oof_has(oof, names):
        run('cross_validate', [*[config_path(configs[n]) for n in names], '--names', *names,
                               '--n-splits', str(n_splits), '--seed', '0', '--work-dir', cv_dir,
                               '--cfg-options', *loaders, *schedule],
            log_file=log('cross_validate'))
    # 3. every member once on the whole train split
    checkpoints = {}
    for name in names:
        member_dir = osp.join(work_dir, name)
        if not osp.isfile(osp.join(member_dir, 'last_checkpoint')):
            run('train', [config_path(configs[name]), '--work-dir', member_dir, '--cfg-options',
                          *loaders, *schedule], log_file=log(f'train_{name}'))
        checkpoints[name] = _member_checkpoint(member_dir)

    rows: List[dict] = []
    image_rows: List[dict] = []
    study_rows_: List[dict] = []
    reported: set = set()
    searches, rocs = {}, {}
    for entry in chosen:
        paths = _paths(work_dir, entry)
        predictions = _run_ensemble(entry, paths, oof, checkpoints, root, run, log,
                                    img_size, batch_size)
        # each member's row once (the first ensemble that has it reports it)
        members = [m for m in entry.members if m not in reported]
        reported.update(members)
        columns = {entry.label: 'prob', **{m: f'prob_{m}' for m in members}}
        with_study = bool(study_rule) and has_study_ids(predictions)
        image, study = _rows(predictions, columns, paths['search'], n_bootstrap,
                             study_rule if with_study else None)
        image_rows += image
        study_rows_ += study
        plot_roc_curves(predictions, paths['roc'], score_columns=columns,
                        thresholds=paths['search'])
        searches[entry.key], rocs[entry.key] = paths['search'], paths['roc']
    for r in image_rows + study_rows_:
        rows.append(_table_row(r, img_size, epochs, {e.label for e in chosen}))
    first = chosen[0].key
    return dict(rows=rows, search=searches[first], roc=rocs[first], searches=searches,
                rocs=rocs)


def _run_ensemble(entry: EnsembleEntry, paths: Dict[str, str], oof: str,
                  checkpoints: Dict[str, str], root: str, run: Callable[..., float],
                  log: Callable[[str], str], img_size: int, batch_size: int) -> str:
    """Steps 2 and 4 for one ensemble: weight search, checkpoint, test; returns the test
    predictions CSV."""
    config = config_path(entry.config)
    if not osp.isfile(paths['search']):
        run('search_ensemble', [oof, '--members', *entry.members, '--average', entry.average,
                                '--test-ann-file', root + 'annotations/test.json',
                                '--out', paths['search']],
            log_file=log(f'search_{entry.key}'))
    if not osp.isfile(paths['checkpoint']):
        run('ensemble_checkpoint', [
            config, '--out', paths['checkpoint'], '--cfg-options',
            *[f'model.members.{i}.checkpoint={checkpoints[m]}'
              for i, m in enumerate(entry.members)]],
            log_file=log(f'checkpoint_{entry.key}'))
    predictions = osp.join(paths['test_dir'], 'test_predictions.csv')
    if not osp.isfile(predictions):
        run('test', [config, paths['checkpoint'], '--work-dir', paths['test_dir'],
                     '--cfg-options', f'model.weights_file={paths["search"]}',
                     f'test_evaluator.threshold={paths["search"]}',
                     f'test_evaluator.prediction_file={predictions}',
                     *_loader_options(root, img_size, batch_size, splits=('test', ))],
            log_file=log(f'test_{entry.key}'))
    return predictions


def _rows(predictions: str, columns: Dict[str, str], search: str, n_bootstrap: int,
          study_rule: Optional[str]):
    """Image rows and (with ``study_rule``) study rows of the chosen score columns."""
    from spinexr.analysis.classifier_report import classifier_rows, study_rows
    image = classifier_rows(predictions, score_columns=columns, thresholds=search,
                            n_bootstrap=n_bootstrap)
    study = (study_rows(predictions, rule=study_rule, score_columns=columns, thresholds=search,
                        n_bootstrap=n_bootstrap) if study_rule else [])
    return image, study


def _table_row(r: dict, img_size: int, epochs: int, ensemble_labels: set) -> dict:
    """One comparison-table row (fractions) from a classifier-report row (percent)."""
    ci = ', '.join(f'{k} {r[k + "_ci"][0]:.1f}-{r[k + "_ci"][1]:.1f}'
                   for k in ('auroc', 'sensitivity', 'specificity', 'f1')
                   if r.get(k + '_ci') is not None)
    name = r['model']
    level = ''
    if r.get('level') == 'study':
        name = f"{r['model']} [study, {r['rule']}]"
        level = (f"{r['n_studies']} studies, views aggregated by {r['rule']}, threshold: "
                 f"{r['threshold_source']}; ")
    elif name in ensemble_labels:
        name = f'{name} (weights+threshold on OOF)'
    return dict(model=name, AUROC=r['auroc'] / 100, sensitivity=r['sensitivity'] / 100,
                specificity=r['specificity'] / 100, F1=r['f1'] / 100,
                notes=(f'classifier, {img_size} px, {epochs} epochs, {level}threshold '
                       f'{r["threshold"]:.3f}; 95% CI: {ci}'))
