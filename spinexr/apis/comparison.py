"""The main job: phantom -> converted data -> train every baseline briefly -> one comparison table.

Steps (each is skipped when its output already exists, so an interrupted run continues):

1. ``tools/misc/make_phantom.py`` writes a synthetic release (CSV + DICOM) into ``WORK/phantom``;
2. ``tools/dataset_converters/vindr_spinexr.py`` converts it into ``WORK/data`` (PNG + COCO);
3. for every entry of :data:`MODELS`, a derived config is written to ``WORK/configs/<name>.py``
   (data root, image size, schedule of the profile) and trained with ``tools/train.py`` into
   ``WORK/work_dirs/<name>``; the wall time goes to ``train_time.json``;
4. :func:`spinexr.evaluation.compare.run_comparison_table` evaluates all models on the test split
   and writes ``WORK/results/comparison.{md,csv,json}``, ``per_class_ap.png`` and ``froc.png``
   (FROC curves, all classes pooled), with a row of the detectors' boxes fused by WBF
   (:func:`spinexr.apis.detector_ensemble.fused_row_from_members`: equal weights, fixed
   thresholds, since every detector here trained on the whole train split and no hold-out is
   searched; ``tools/fuse_detections.py`` does the searched version).

Profiles (:data:`PROFILES`): ``cpu-demo`` fits in 30 minutes on 2 CPU cores (small phantom, small
images, a few hundred iterations, ResNet-18 backbones, narrower FPN and heads for the anchor-based
detectors, anchors scaled with the image); ``full`` runs the configs as written
(640 px, R50, 12 epochs) and is what a GPU machine runs by default.

To add a model (e.g. YOLO11 or a classifier row), append a :class:`ModelEntry` to :data:`MODELS`.
"""
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

#: Repository root (``tools/`` and ``configs/`` live there).
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@dataclass
class ModelEntry:
    """One model of the comparison.

    Attributes:
        name (str): Row label and work-dir name.
        config (str): Config path relative to the repository root.
        demo_options (dict): Extra config changes (dotted keys) for the ``cpu-demo`` profile.
        demo_lr (float, optional): Learning rate for the ``cpu-demo`` profile.
        notes (str): Text for the table notes.
        demo_notes (str): What ``demo_options`` change, for the table notes of ``cpu-demo``.
        demo_epochs (int, optional): Train the ``cpu-demo`` profile for this many epochs with the
            config's own hooks in charge of lr, EMA and the pipeline switch (the YOLO11 recipe)
            instead of the iteration-based schedule of the other models.
        demo_iters (int, optional): Iterations of the iteration-based ``cpu-demo`` schedule
            (default :data:`DEFAULT_DEMO_ITERS`); a profile's ``iters`` (``--iters``) overrides it.
    """
    name: str
    config: str
    demo_options: Dict[str, object] = field(default_factory=dict)
    demo_lr: Optional[float] = None
    notes: str = ''
    demo_notes: str = ''
    demo_epochs: Optional[int] = None
    demo_iters: Optional[int] = None


#: Iterations of the ``cpu-demo`` schedule for entries without ``demo_iters``.
DEFAULT_DEMO_ITERS = 80

#: ResNet-18 instead of ResNet-50 for the 2-core CPU demo (4x fewer backbone FLOPs).
_R18_FPN = {'model.backbone.depth': 18, 'model.neck.in_channels': [64, 128, 256, 512]}
#: ... and a 128-channel FPN (mmdet: 256), for the anchor-based detectors' CPU demo.
_R18_FPN128 = {**_R18_FPN, 'model.neck.out_channels': 128}

#: The models of the comparison, in table order. Extend this list to add rows.
MODELS: List[ModelEntry] = [
    ModelEntry('faster-rcnn_r50_fpn', 'configs/faster_rcnn/faster-rcnn_r50_fpn_12e_vindr-640.py',
               demo_options={
                   **_R18_FPN128,
                   'model.rpn_head.in_channels': 128,
                   'model.rpn_head.feat_channels': 128,
                   'model.roi_head.bbox_roi_extractor.out_channels': 128,
                   'model.roi_head.bbox_head.in_channels': 128,
                   'model.roi_head.bbox_head.fc_out_channels': 512,
                   # fewer RoIs: the RoI head's fc layers dominate CPU time
                   'model.train_cfg.rpn_proposal.nms_pre': 1000,
                   'model.train_cfg.rpn_proposal.max_per_img': 500,
                   'model.train_cfg.rcnn.sampler.num': 128,
                   'model.test_cfg.rpn.nms_pre': 500,
                   'model.test_cfg.rpn.max_per_img': 300,
                   'train_dataloader.batch_size': 8,
               }, demo_lr=0.02, demo_iters=240,
               demo_notes='FPN and heads 128 channels, 512-d RoI fcs, 128 sampled RoIs, '
               '300 test proposals'),
    ModelEntry('retinanet_r50_fpn', 'configs/retinanet/retinanet_r50_fpn_12e_vindr-640.py',
               demo_options={
                   **_R18_FPN128,
                   'model.bbox_head.in_channels': 128,
                   'model.bbox_head.feat_channels': 128,
                   'model.bbox_head.stacked_convs': 2,
                   'train_dataloader.batch_size': 8,
               }, demo_lr=0.01, demo_iters=240,
               demo_notes='FPN and head 128 channels, 2 head convs per branch'),
    ModelEntry('sparse-rcnn_r50_fpn',
               'configs/sparse_rcnn/sparse-rcnn_r50_fpn_12e_vindr-640.py',
               demo_options=dict(_R18_FPN), demo_lr=1e-4, demo_iters=50),
    ModelEntry('dino-4scale_r50', 'configs/dino/dino-4scale_r50_12e_vindr-640.py',
               demo_options={'model.backbone.depth': 18,
                             'model.neck.in_channels': [128, 256, 512],
                             # a 256 px image has only ~500 encoder tokens to pick 900 from
                             'model.num_queries': 300},
               demo_lr=2e-4, demo_iters=50, demo_notes='300 queries'),
]

MODELS.append(
    ModelEntry('yolo11n', 'configs/yolo11/yolo11n_35e_vindr-640.py',
               demo_options={'train_dataloader.batch_size': 8}, demo_epochs=30,
               demo_notes='30 epochs x 8 img, no gradient accumulation'))

#: Run profiles. ``img_size`` is the converter's longer side and the test scale; train scales
#: and anchor sizes are the config's times ``img_size / 640``. ``iters`` (``--iters``), when set,
#: replaces every entry's ``demo_iters``; ``batch_size`` applies unless an entry's
#: ``demo_options`` set ``train_dataloader.batch_size``.
PROFILES: Dict[str, Dict[str, object]] = {
    'cpu-demo': dict(num_train=64, num_test=24, size_scale=0.25, img_size=320, iters=None,
                     batch_size=2, demo=True, n_bootstrap=1000, workers=0,
                     cls_img_size=64, cls_epochs=5, cls_folds=2),
    'full': dict(num_train=600, num_test=200, size_scale=1.0, img_size=640, iters=None,
                 batch_size=None, demo=False, n_bootstrap=1000, workers=4,
                 cls_img_size=384, cls_epochs=60, cls_folds=5),
}


def default_profile() -> str:
    """``'full'`` when a CUDA GPU is present, else ``'cpu-demo'``."""
    import torch
    return 'full' if torch.cuda.is_available() else 'cpu-demo'


def _set_dotted(cfg, key: str, value: object) -> None:
    """Set ``a.b.c`` in a Config/dict tree (missing dicts are created)."""
    node = cfg
    parts = key.split('.')
    for p in parts[:-1]:
        if p not in node or node[p] is None:
            node[p] = {}
        node = node[p]
    node[parts[-1]] = value


def scale_pipeline_sizes(obj: object, factor: float) -> object:
    """Multiply every size of a pipeline or model config by ``factor``.

    ``scale`` / ``scales`` / ``img_scale`` / ``size`` / ``random_size_range`` tuples are rounded to
    multiples of 32 (at least 32); ``border`` offsets are scaled as they are. Returns a new object.
    """
    def _s(t):
        return tuple(max(32, int(round(v * factor / 32.0)) * 32) for v in t)
    if isinstance(obj, list):
        return [scale_pipeline_sizes(o, factor) for o in obj]
    if isinstance(obj, dict):
        out = type(obj)()
        for k, v in obj.items():
            if (k in ('scale', 'img_scale', 'size', 'random_size_range')
                    and isinstance(v, (tuple, list)) and v and isinstance(v[0], int)):
                out[k] = _s(v)
            elif k == 'border' and isinstance(v, (tuple, list)):
                out[k] = tuple(int(round(b * factor)) for b in v)
            elif k in ('scale', 'scales') and isinstance(v, (tuple, list)):
                out[k] = [_s(t) if isinstance(t, (tuple, list)) else t for t in v]
            else:
                out[k] = scale_pipeline_sizes(v, factor)
        return out
    return obj


def scale_anchor_sizes(obj: object, factor: float) -> object:
    """Multiply the anchor sizes of every mmdet anchor generator in a model config by ``factor``.

    When the input is resized by ``factor`` the lesions shrink with it; scaling the anchors too
    keeps the anchor-to-box overlaps (and so the assigner's positives) those of the original config.
    ``octave_base_scale`` (RetinaNet) or ``scales`` (RPN) is scaled; ``strides`` stay. Returns a new
    object.
    """
    if isinstance(obj, list):
        return [scale_anchor_sizes(o, factor) for o in obj]
    if isinstance(obj, dict):
        out = type(obj)((k, scale_anchor_sizes(v, factor)) for k, v in obj.items())
        if 'AnchorGenerator' in str(obj.get('type', '')):
            if 'octave_base_scale' in out:
                out['octave_base_scale'] = out['octave_base_scale'] * factor
            elif 'scales' in out:
                out['scales'] = [s * factor for s in out['scales']]
        return out
    return obj


def _epoch_demo(cfg, epochs: int, factor: float) -> None:
    """Shorten an epoch-based recipe (YOLO11's) for the CPU demo, keeping its own hooks."""
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs, val_interval=epochs + 1)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if cfg.optim_wrapper.get('accumulative_counts', 1) != 1:
        cfg.optim_wrapper.accumulative_counts = 1
        cfg.model.loss_gain = 1
    cfg.model = scale_pipeline_sizes(cfg.model, factor)
    for hook in cfg.get('custom_hooks', []):
        if hook['type'] == 'YOLOParamSchedulerHook':
            hook['warmup_epochs'] = 1.0
        elif hook['type'] == 'PipelineSwitchHook':
            hook['switch_epoch'] = max(1, epochs - max(1, epochs // 5))
            hook['switch_pipeline'] = scale_pipeline_sizes(hook['switch_pipeline'], factor)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=epochs, max_keep_ckpts=1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=10)


def demo_iters(entry: ModelEntry, profile: Dict[str, object]) -> int:
    """Iterations of the iteration-based demo schedule: the profile's ``iters`` if set, else the
    entry's ``demo_iters``, else :data:`DEFAULT_DEMO_ITERS`."""
    return int(profile.get('iters') or entry.demo_iters or DEFAULT_DEMO_ITERS)


def derive_config(entry: ModelEntry, profile: Dict[str, object], data_root: str,
                  out_file: str) -> str:
    """Write the config that the main job trains for one model.

    Args:
        entry (ModelEntry): The model.
        profile (dict): One of :data:`PROFILES`.
        data_root (str): Converted dataset root.
        out_file (str): Where to write the derived config.

    Returns:
        str: ``out_file``.
    """
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO_ROOT, entry.config))
    root = data_root.rstrip('/') + '/'
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[name].dataset.data_root = root
    for name in ('val_evaluator', 'test_evaluator'):
        cfg[name].ann_file = root + 'annotations/test.json'
    factor = float(profile['img_size']) / 640.0
    if factor != 1.0:
        for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            cfg[name].dataset.pipeline = scale_pipeline_sizes(cfg[name].dataset.pipeline, factor)
        cfg.model = scale_anchor_sizes(cfg.model, factor)
    workers = int(profile.get('workers', 2))
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[name].num_workers = workers
        cfg[name].persistent_workers = workers > 0
    if profile.get('batch_size'):
        cfg.train_dataloader.batch_size = int(profile['batch_size'])
    cfg.randomness = dict(seed=0)
    if profile.get('demo') and entry.demo_epochs:
        for key, value in entry.demo_options.items():
            _set_dotted(cfg, key, value)
        _epoch_demo(cfg, int(entry.demo_epochs), factor)
    elif profile.get('demo'):
        for key, value in entry.demo_options.items():
            _set_dotted(cfg, key, value)
        iters = demo_iters(entry, profile)
        cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters)
        # no validation while training: the comparison evaluates the final weights on test
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
        warm = min(50, iters // 5)
        cfg.param_scheduler = []
        if warm >= 1:
            cfg.param_scheduler.append(
                dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=warm))
        if iters - warm >= 2:
            cfg.param_scheduler.append(
                dict(type='CosineAnnealingLR', by_epoch=False, begin=warm, end=iters,
                     T_max=iters - warm, eta_min_ratio=0.05))
        if entry.demo_lr is not None:
            cfg.optim_wrapper.optimizer.lr = entry.demo_lr
        cfg.optim_wrapper.setdefault('clip_grad', dict(max_norm=10.0, norm_type=2))
        cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False,
                                            interval=iters, max_keep_ckpts=1)
        cfg.default_hooks.logger = dict(type='LoggerHook', interval=20)
        cfg.log_processor = dict(type='LogProcessor', window_size=20, by_epoch=False)
        cfg.train_dataloader.sampler = dict(type='InfiniteSampler', shuffle=True)
    os.makedirs(osp.dirname(out_file), exist_ok=True)
    cfg.dump(out_file)
    return out_file


def _run(cmd: Sequence[str], log_file: str) -> float:
    """Run a command from the repository root, logging to a file; returns seconds.

    Raises:
        RuntimeError: With the log's tail if the command fails.
    """
    t0 = time.perf_counter()
    env = dict(os.environ)
    env['PYTHONPATH'] = REPO_ROOT + os.pathsep + env.get('PYTHONPATH', '')
    with open(log_file, 'w') as log:
        proc = subprocess.run(list(cmd), cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                              env=env)
    if proc.returncode != 0:
        tail = ''.join(open(log_file, errors='replace').readlines()[-30:])
        raise RuntimeError(f'command failed ({proc.returncode}): {" ".join(cmd)}\n'
                           f'see {log_file}:\n{tail}')
    return time.perf_counter() - t0


def prepare_data(work_dir: str, profile: Dict[str, object], seed: int = 0,
                 python: str = sys.executable) -> str:
    """Generate and convert the phantom unless already there; returns the data root."""
    raw = osp.join(work_dir, 'phantom')
    data = osp.join(work_dir, 'data')
    os.makedirs(work_dir, exist_ok=True)
    workers = str(max(1, min(8, (os.cpu_count() or 1) // 2)))
    if not osp.isfile(osp.join(raw, 'annotations', 'test.csv')):
        _run([python, 'tools/misc/make_phantom.py', '--out', raw, '--num-train',
              str(profile['num_train']), '--num-test', str(profile['num_test']), '--seed',
              str(seed), '--size-scale', str(profile['size_scale']), '--workers', workers,
              '--no-progress'],
             osp.join(work_dir, 'make_phantom.log'))
    if not osp.isfile(osp.join(data, 'annotations', 'test.json')):
        _run([python, 'tools/dataset_converters/vindr_spinexr.py', '--data-root', raw,
              '--out-dir', data, '--img-size', str(profile['img_size']), '--workers', workers,
              '--no-progress'],
             osp.join(work_dir, 'convert.log'))
    return data


def train_model(entry: ModelEntry, profile: Dict[str, object], data_root: str, work_dir: str,
                python: str = sys.executable, force: bool = False) -> str:
    """Train one model with ``tools/train.py``; returns its work dir."""
    cfg_file = derive_config(entry, profile, data_root,
                             osp.join(work_dir, 'configs', f'{entry.name}.py'))
    wd = osp.join(work_dir, 'work_dirs', entry.name)
    done = osp.join(wd, 'train_time.json')
    if osp.isfile(done) and not force:
        return wd
    os.makedirs(wd, exist_ok=True)
    seconds = _run([python, 'tools/train.py', cfg_file, '--work-dir', wd],
                   osp.join(work_dir, f'train_{entry.name}.log'))
    with open(done, 'w') as f:
        json.dump(dict(seconds=seconds), f)
    return wd


def run_main_job(work_dir: str = 'work_dirs/comparison',
                 profile: Optional[str] = None,
                 models: Optional[Sequence[str]] = None,
                 seed: int = 0,
                 force: bool = False,
                 python: str = sys.executable,
                 overrides: Optional[Dict[str, object]] = None,
                 classifiers: bool = True) -> Dict[str, str]:
    """Run the whole comparison and return the written table files.

    Args:
        work_dir (str): Folder for everything the job writes.
        profile (str, optional): ``'cpu-demo'`` or ``'full'``; default :func:`default_profile`.
        models (Sequence[str], optional): Names from :data:`MODELS` (default: all).
        seed (int): Phantom seed.
        force (bool): Retrain models that already have a ``train_time.json``.
        python (str): Interpreter for the subprocesses.
        overrides (dict, optional): Profile values to change (e.g. ``{'iters': 20}``).
        classifiers (bool): Also run the classifier chain
            (:func:`spinexr.apis.classification_chain.run_classifier_chain`) and add its rows.

    Returns:
        dict[str, str]: Paths of the table files (``markdown``, ``csv``, ``png``, ``json``).
    """
    from spinexr.analysis.model_table import ModelSpec, find_checkpoint, run_comparison_table
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
    data_root = prepare_data(work_dir, prof, seed=seed, python=python)
    t_data = time.perf_counter() - t0
    specs = []
    for e in entries:
        print(f'[run_comparison] training {e.name} ({profile})', flush=True)
        wd = train_model(e, prof, data_root, work_dir, python=python, force=force)
        notes = e.notes
        if prof.get('demo'):
            if e.demo_epochs:
                demo = f'CPU demo: {prof["img_size"]} px, from scratch'
            else:
                batch = e.demo_options.get('train_dataloader.batch_size', prof['batch_size'])
                demo = (f'CPU demo: ResNet-18, {demo_iters(e, prof)} iters x {batch} img, '
                        f'{prof["img_size"]} px, from scratch')
            notes = '; '.join(x for x in (notes, demo, e.demo_notes) if x)
        specs.append(ModelSpec(name=e.name, config=osp.join(work_dir, 'configs',
                                                             f'{e.name}.py'),
                               checkpoint=find_checkpoint(wd), work_dir=wd, notes=notes))
    extra_rows = []
    if classifiers:
        from .classification_chain import run_classifier_chain
        print(f'[run_comparison] classifiers: CV, weight search, members, ensemble ({profile})',
              flush=True)
        chain = run_classifier_chain(
            osp.join(work_dir, 'classifiers'), data_root, run=_run,
            img_size=int(prof['cls_img_size']), epochs=int(prof['cls_epochs']),
            n_splits=int(prof['cls_folds']), n_bootstrap=int(prof['n_bootstrap']), python=python)
        extra_rows = chain['rows']
    print('[run_comparison] evaluating', flush=True)
    n_train = prof['num_train']
    foot = [f'Data: phantom ({n_train} train / {prof["num_test"]} test images, seed {seed}), '
            f'converted at {prof["img_size"]} px; profile `{profile}`.',
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
