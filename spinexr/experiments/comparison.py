"""The main job: phantom -> converted data -> train every baseline briefly -> one comparison table.

Steps (each is skipped when its output already exists, so an interrupted run continues):

1. :func:`spinexr.datasets.phantom.generate_phantom` writes a synthetic release (CSV + DICOM)
   into ``WORK/phantom``;
2. :func:`spinexr.datasets.converters.convert_vindr_spinexr` converts it into ``WORK/data``
   (PNG + COCO);
3. for every entry of :data:`~spinexr.experiments.detector_configs.MODELS`, a derived config is
   written to ``WORK/configs/<name>.py`` (data root, image size, schedule of the profile) and
   trained by ``python -m spinexr.cli.train`` into ``WORK/work_dirs/<name>``; the wall time goes
   to ``train_time.json``;
4. optionally the classifier chain (:func:`spinexr.experiments.classifier_chain.
   run_classifier_chain`) adds its rows;
5. :func:`spinexr.analysis.model_table.run_comparison_table` evaluates all models on the test split
   and writes ``WORK/results/comparison.{md,csv,json}``, ``per_class_ap.png`` and ``froc.png``
   (FROC curves, all classes pooled), with a row of the detectors' boxes fused by WBF
   (:func:`spinexr.apis.detector_ensemble.fused_row_from_members`: equal weights, fixed
   thresholds, since every detector here trained on the whole train split and no hold-out is
   searched; ``tools/fuse_detections.py`` does the searched version).

Profiles (``cpu-demo``, ``full``) are those of :data:`spinexr.experiments.profiles.PROFILES`
that :func:`~spinexr.experiments.profiles.profiles_for` gives for ``'comparison'``.
"""
import json
import os
import os.path as osp
import resource
import time
from typing import Dict, Optional, Sequence

from spinexr.utils.process import run_command
from .detector_configs import MODELS, ModelEntry, demo_iters, derive_config
from .profiles import profiles_for

#: The comparison's profiles: entries of the one table
#: :data:`spinexr.experiments.profiles.PROFILES`.
PROFILES = profiles_for('comparison')


def prepare_data(work_dir: str, profile: Dict[str, object], seed: int = 0) -> str:
    """Generate and convert the phantom unless already there.

    Args:
        work_dir (str): The job's folder (``phantom/`` and ``data/`` are written in it).
        profile (dict): A comparison profile (``num_train``, ``num_test``, ``size_scale``,
            ``img_size``).
        seed (int): Phantom seed.

    Returns:
        str: The converted data root.

    Raises:
        RuntimeError: When the conversion reports problems.
    """
    from spinexr.datasets.converters import convert_vindr_spinexr
    from spinexr.datasets.phantom import generate_phantom
    raw = osp.join(work_dir, 'phantom')
    data = osp.join(work_dir, 'data')
    os.makedirs(work_dir, exist_ok=True)
    workers = max(1, min(8, (os.cpu_count() or 1) // 2))
    if not osp.isfile(osp.join(raw, 'annotations', 'test.csv')):
        summary = generate_phantom(raw, int(profile['num_train']), int(profile['num_test']),
                                   seed, size_scale=float(profile['size_scale']),
                                   workers=workers)
        with open(osp.join(work_dir, 'make_phantom.log'), 'w', encoding='utf-8') as f:
            json.dump(summary, f, indent=1)
    if not osp.isfile(osp.join(data, 'annotations', 'test.json')):
        log_file = osp.join(work_dir, 'convert.log')
        with open(log_file, 'w', encoding='utf-8') as f:
            code = convert_vindr_spinexr(
                data_root=raw, out_dir=data, img_size=int(profile['img_size']), workers=workers,
                progress=False, log=lambda line: f.write(f'{line}\n'))
        if code != 0:
            raise RuntimeError(f'converting the phantom failed ({code}); see {log_file}')
    return data


def train_model(entry: ModelEntry, profile: Dict[str, object], data_root: str, work_dir: str,
                force: bool = False) -> str:
    """Train one model with ``python -m spinexr.cli.train`` unless it was trained before.

    Args:
        entry (ModelEntry): The model.
        profile (dict): A comparison profile.
        data_root (str): Converted dataset root.
        work_dir (str): The job's folder.
        force (bool): Retrain a model that already has a ``train_time.json``.

    Returns:
        str: The model's work dir.
    """
    cfg_file = derive_config(entry, profile, data_root,
                             osp.join(work_dir, 'configs', f'{entry.name}.py'))
    wd = osp.join(work_dir, 'work_dirs', entry.name)
    done = osp.join(wd, 'train_time.json')
    if osp.isfile(done) and not force:
        return wd
    os.makedirs(wd, exist_ok=True)
    log_file = osp.join(work_dir, f'train_{entry.name}.log')
    if osp.isfile(log_file):  # run_command appends: one log per training
        os.remove(log_file)
    seconds = run_command('train', [cfg_file, '--work-dir', wd], log_file=log_file)
    with open(done, 'w') as f:
        json.dump(dict(seconds=seconds), f)
    return wd


def _notes(entry: ModelEntry, prof: Dict[str, object]) -> str:
    """Table notes of one model: its own, plus what the demo profile changed."""
    if not prof.get('demo'):
        return entry.notes
    if entry.demo_epochs:
        demo = f'CPU demo: {prof["img_size"]} px, from scratch'
    else:
        batch = entry.demo_options.get('train_dataloader.batch_size', prof['batch_size'])
        demo = (f'CPU demo: ResNet-18, {demo_iters(entry, prof)} iters x {batch} img, '
                f'{prof["img_size"]} px, from scratch')
    return '; '.join(x for x in (entry.notes, demo, entry.demo_notes) if x)


def run_comparison(work_dir: str = 'work_dirs/comparison',
                   profile: Optional[str] = None,
                   models: Optional[Sequence[str]] = None,
                   seed: int = 0,
                   force: bool = False,
                   overrides: Optional[Dict[str, object]] = None,
                   classifiers: bool = True) -> Dict[str, str]:
    """Run the whole comparison and return the written table files.

    Args:
        work_dir (str): Folder for everything the job writes.
        profile (str, optional): ``'cpu-demo'`` or ``'full'``; default
            :func:`spinexr.experiments.profiles.default_profile`.
        models (Sequence[str], optional): Names from :data:`MODELS` (default: all).
        seed (int): Phantom seed.
        force (bool): Retrain models that already have a ``train_time.json``.
        overrides (dict, optional): Profile values to change (e.g. ``{'iters': 20}``).
        classifiers (bool): Also run the classifier chain
            (:func:`spinexr.experiments.classifier_chain.run_classifier_chain`) and add its rows.

    Returns:
        dict[str, str]: Paths of the table files (``markdown``, ``csv``, ``png``, ``json``).

    Raises:
        ValueError: For an unknown profile or model name.
    """
    from spinexr.analysis.model_table import ModelSpec, find_checkpoint, run_comparison_table

    from .profiles import default_profile
    profile = profile or default_profile()
    if profile not in PROFILES:
        raise ValueError(f'unknown profile {profile!r}; choose from {sorted(PROFILES)}')
    prof = dict(PROFILES[profile], **(overrides or {}))
    entries = [m for m in MODELS if models is None or m.name in models]
    if models is not None and len(entries) != len(set(models)):
        known = [m.name for m in MODELS]
        raise ValueError(f'unknown model in {list(models)}; known: {known}')
    work_dir = osp.abspath(work_dir)
    t0 = time.perf_counter()
    data_root = prepare_data(work_dir, prof, seed=seed)
    t_data = time.perf_counter() - t0
    specs = []
    for e in entries:
        print(f'[run_comparison] training {e.name} ({profile})', flush=True)
        wd = train_model(e, prof, data_root, work_dir, force=force)
        specs.append(ModelSpec(name=e.name, config=osp.join(work_dir, 'configs', f'{e.name}.py'),
                               checkpoint=find_checkpoint(wd), work_dir=wd,
                               notes=_notes(e, prof)))
    extra_rows = []
    if classifiers:
        from .classifier_chain import run_classifier_chain
        print(f'[run_comparison] classifiers: CV, weight search, members, ensemble ({profile})',
              flush=True)
        chain = run_classifier_chain(
            osp.join(work_dir, 'classifiers'), data_root, img_size=int(prof['cls_img_size']),
            epochs=int(prof['cls_epochs']), n_splits=int(prof['cls_folds']),
            n_bootstrap=int(prof['n_bootstrap']))
        extra_rows = chain['rows']
    print('[run_comparison] evaluating', flush=True)
    foot = [f'Data: phantom ({prof["num_train"]} train / {prof["num_test"]} test images, '
            f'seed {seed}), converted at {prof["img_size"]} px; profile `{profile}`.',
            f'Data preparation took {t_data / 60:.1f} min.']
    if prof.get('demo'):
        foot.append('CPU demo numbers show that the pipeline trains and evaluates; they are not '
                    'estimates of the detectors\' accuracy (see docs/comparison.md).')
    _, paths = run_comparison_table(specs, osp.join(work_dir, 'results'), data_root=data_root,
                                    n_bootstrap=int(prof['n_bootstrap']), footnotes=foot,
                                    extra_rows=extra_rows,
                                    ensemble=dict(method='wbf') if len(specs) >= 2 else None)
    total = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    self_usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime + self_usage.ru_utime + self_usage.ru_stime
    with open(paths['markdown'], 'a') as f:
        f.write(f'Total wall time of the main job: {total / 60:.1f} min '
                f'(CPU time {cpu / 60:.1f} min, {os.cpu_count()} visible cores, load average '
                f'at the end {os.getloadavg()[0]:.1f}).\n')
    return paths
