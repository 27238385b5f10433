"""Batched inference from files: DICOM / PNG / JPEG in, findings (JSON, CSV, overlays) out.

The pipeline, in order:

1. :func:`collect_inputs` expands files, folders (recursively) and ``.txt`` / ``.csv`` lists.
2. Worker processes (a torch ``DataLoader``) decode each file with :func:`read_image`: DICOM
   through :func:`spinexr.io.load_dicom` (display-correct 8-bit: modality LUT, VOI window,
   MONOCHROME1 inverted), other images with OpenCV as mmcv's ``LoadImageFromFile`` would (BGR).
   A file that cannot be read becomes a failure record; the run goes on. The worker stacks the
   batch into one padded uint8 tensor (:func:`~spinexr.apis.inference_batch.collate_decoded`),
   pinned on CUDA.
3. On the device (the same code on CPU): one non-blocking copy of the batch, the resize/pad of
   the config's test pipeline (:class:`PreprocessSpec`: mmdet ``Resize`` scale / keep_ratio,
   optional ``Pad``) batched with ``F.interpolate``, the model's own ``data_preprocessor`` on
   the stacked batch (BGR->RGB, normalise, pad) and ``model.predict`` with per-image metainfo
   (``ori_shape``, ``img_shape``, ``scale_factor``), so boxes come back in the pixel grid of the
   original file (for DICOM: Rows x Columns); all results come back in one copy
   (:class:`~spinexr.apis.inference_engine.BatchInferencer`). A writer thread builds the records
   and draws the overlays (:class:`~spinexr.apis.inference_writer.ResultWriter`).
4. Optionally an image classifier (mmpretrain model or ``WeightedEnsembleClassifier``) gives the
   abnormal probability, and decision fusion (:func:`spinexr.evaluation.fusion.gate_predictions`)
   keeps only boxes above 0.5 on images whose probability is below the fusion threshold.
5. The images are grouped into studies and one row per study is written beside the image rows
   (:mod:`spinexr.apis.inference_study`: which study, and how its views are aggregated).

Coordinates: boxes are ``x1, y1, x2, y2`` in original-image pixels (x = column, y = row, origin at
the top-left corner of the first stored pixel), clipped to the image.
"""
import os
import os.path as osp
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

import torch

from .inference_batch import DecodedBatch, collate_decoded, prefetch  # noqa: F401
from .inference_engine import BatchInferencer, prepare_images  # noqa: F401
from .inference_io import (CSV_FIELDS, IMAGE_EXTS, ImageFileDataset, _record,  # noqa: F401
                           _write_overlay, collect_inputs, draw_overlay, read_image,
                           write_findings)
from .inference_preprocess import (DICOM_EXTS, PreprocessSpec, boxes_to_network,  # noqa: F401
                                   interpolation_for)
from .inference_writer import ResultWriter, overlay_stems

if TYPE_CHECKING:
    from mmengine.config import Config


def _load_config(config: Union[str, 'Config'], cfg_options: Optional[dict] = None) -> 'Config':
    """A config from a file, a shipped config name or a loaded ``Config`` (copied, so the
    caller's stays as it is), with ``cfg_options`` merged in."""
    import copy

    from mmengine.config import Config

    from spinexr.utils.paths import config_path
    if isinstance(config, Config):
        cfg = copy.deepcopy(config)
    else:
        try:
            config = config_path(config)
        except FileNotFoundError:
            raise FileNotFoundError(f'config file not found: {config}') from None
        cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def _load_weights(model: torch.nn.Module, checkpoint: str) -> dict:
    """Load with spinexr's safe loader; refuse a checkpoint that shares no key with the model."""
    from spinexr.engine.checkpoint import load_checkpoint_dict
    from mmengine.runner.checkpoint import _load_checkpoint_to_model
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    ckpt = load_checkpoint_dict(checkpoint, map_location='cpu')
    state = ckpt.get('state_dict', ckpt)
    keys = {k[len('module.'):] if k.startswith('module.') else k for k in state}
    if not keys & set(model.state_dict()):
        raise ValueError(f'{checkpoint}: none of its {len(keys)} weights belongs to the model '
                         'built from the config (wrong config or checkpoint?)')
    _load_checkpoint_to_model(model, ckpt, strict=False)
    return ckpt


def _test_pipeline(cfg) -> Sequence[dict]:
    loader = cfg.get('test_dataloader') or {}
    pipeline = (loader.get('dataset') or {}).get('pipeline') if loader else None
    pipeline = pipeline or cfg.get('test_pipeline')
    if not pipeline:
        raise ValueError('the config has no test pipeline (test_dataloader.dataset.pipeline or '
                         'test_pipeline)')
    return pipeline


def build_detector(config: Union[str, 'Config'], checkpoint: Optional[str], device: str = 'cpu',
                   fp16: bool = False, fuse: bool = True, channels_last: Optional[bool] = None,
                   cfg_options: Optional[dict] = None, prepare: bool = True
                   ) -> Tuple[torch.nn.Module, PreprocessSpec, List[str]]:
    """Build any mmdet detector from a config (incl. ``YOLO11Detector``) and load a checkpoint.

    The one way spinexr builds a detector for inference and evaluation (the comparison table,
    :mod:`spinexr.analysis.model_table`, builds its models here too).

    Args:
        config (str | Config): mmdet config file, shipped config name
            (:func:`spinexr.utils.paths.config_path`) or a loaded ``Config`` (not modified).
        checkpoint (str, optional): mmengine checkpoint (``state_dict``); None keeps the
            initialisation (tests, benchmarks).
        device (str): ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.
        fp16 (bool): On CUDA, YOLO11 runs in half precision (as Ultralytics' ``half=True``);
            other detectors under ``torch.autocast``.
        fuse (bool): Fuse Conv+BN of a YOLO11 network (as Ultralytics' predictor does).
        channels_last (bool, optional): Channels-last memory format of a YOLO11 network and its
            input. None: on for CUDA and for x86 CPUs with oneDNN (Ultralytics' predictor does
            the latter by default; it is about 1.3x faster there).
        cfg_options (dict, optional): Config overrides.
        prepare (bool): Let the detector prepare itself for inference (below). False keeps the
            model as trained, only in eval mode on the device (``fp16``, ``fuse`` and
            ``channels_last`` then do nothing): the comparison table counts its parameters.

    The config's ``custom_imports`` are imported first. The detector prepares itself for
    inference (``UltralyticsDetector.prepare_for_inference``: fuse, in-place activations,
    channels-last, half); other mmdet detectors are only put in eval mode on the device.

    Returns:
        tuple: ``(model in eval mode on device, PreprocessSpec, class names)``.
    """
    from mmengine.registry import DefaultScope
    from mmengine.utils import import_modules_from_strings

    import spinexr.models  # noqa: F401  (registration)
    from mmdet.registry import MODELS
    from spinexr.datasets.metainfo import CLASSES
    cfg = _load_config(config, cfg_options)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    if 'pretrained' in cfg.model and cfg.model.get('type') in ('YOLO11Detector', 'RTDETRDetector'):
        cfg.model.pretrained = None
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')):
        model = MODELS.build(cfg.model)
    meta = {}
    if checkpoint:
        meta = (_load_weights(model, checkpoint).get('meta') or {}).get('dataset_meta') or {}
    names = meta.get('classes') or (cfg.get('metainfo') or {}).get('classes') or CLASSES
    model.eval().to(device)
    half = fp16 and str(device).startswith('cuda')
    # YOLO11Detector: fuse, half, channels-last
    if prepare and hasattr(model, 'prepare_for_inference'):
        model.prepare_for_inference(half=half, fuse=fuse, channels_last=channels_last)
    # other mmdet detectors stay float32 (``fp16`` means autocast, InferencePrecision)
    return model, PreprocessSpec.from_pipeline(_test_pipeline(cfg)), list(names)


def build_classifier(config: str, checkpoint: Optional[str], device: str = 'cpu'
                     ) -> Tuple[torch.nn.Module, PreprocessSpec]:
    """Build an mmpretrain classifier (or ``WeightedEnsembleClassifier``) and load a checkpoint.

    The config's top-level ``data_preprocessor`` (mmpretrain's convention) is merged into the
    model, so the model normalises as it was trained. Built in float32; :class:`BatchInferencer`
    puts it on the detector's device and precision (:class:`InferencePrecision`).
    """
    from mmengine.registry import DefaultScope

    import spinexr.models  # noqa: F401
    from spinexr.models.classifiers.ensemble import build_member
    cfg = _load_config(config)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmpretrain')):
        model = build_member(dict(config=config))
    if checkpoint:
        _load_weights(model, checkpoint)
    model.eval().to(device)
    return model, PreprocessSpec.from_pipeline(_test_pipeline(cfg))


# ----------------------------------------------------------------------------- running
def run_inference(inputs: Sequence[str], config: str, checkpoint: Optional[str],
                  out_dir: Optional[str] = None, classifier: Optional[Sequence[str]] = None,
                  fusion_threshold: Optional[float] = None, batch_size: int = 8,
                  workers: int = 2, device: str = 'cpu', score_thr: float = 0.05,
                  fp16: bool = False, overlays: bool = True, resize_mode: str = 'auto',
                  fast_decode: bool = True, overlay_size: int = 1024, progress: bool = True,
                  cfg_options: Optional[dict] = None, detector=None, study_rule: str = 'max',
                  study_map: Optional[str] = None) -> Dict[str, Any]:
    """Run the whole pipeline: inputs -> decode (workers) -> batched models -> outputs.

    Args:
        inputs (Sequence[str]): Files, folders, ``.txt`` / ``.csv`` lists.
        config (str): Detector config. checkpoint (str): Its checkpoint (None: initial weights).
        out_dir (str, optional): Output folder (``findings.json``, ``findings.csv``,
            ``studies.csv``, ``failures.txt``, ``overlays/<image_id>.png``); None writes nothing.
        classifier (Sequence[str], optional): ``(config, checkpoint)`` of an image classifier.
        fusion_threshold (float, optional): Decision fusion operating point (from validation).
        batch_size (int): Images per batch. workers (int): Decoding processes (0: in-process).
        device (str): ``'cpu'`` / ``'cuda'`` / ``'cuda:N'``. score_thr (float): Box score cut.
        fp16 (bool): Half precision on CUDA. overlays (bool): Write overlay PNGs.
        resize_mode (str): ``'auto'``, ``'pipeline'``, ``'bilinear'`` or ``'area'``.
        fast_decode (bool): Reduced-resolution JPEG 2000 decode of large DICOMs (longer side
            kept at least the network input, and at least ``overlay_size`` with overlays on).
        overlay_size (int): Smallest longer side of overlays of fast-decoded DICOMs.
        progress (bool): tqdm progress bar.
        cfg_options (dict, optional): Detector config overrides.
        detector (tuple, optional): A prebuilt ``(model, spec, class_names)`` (benchmarks).
        study_rule (str): How a study's abnormal probability comes from its views' (``'max'``,
            ``'noisy_or'``, ``'mean'``; :mod:`spinexr.evaluation.study_level`).
        study_map (str, optional): COCO json or CSV giving each ``image_id`` its ``study_id``
            (:func:`spinexr.apis.inference_study.load_study_map`); ``.csv`` input lists with a
            ``study_id`` column count too; else a DICOM's StudyInstanceUID, else the image.

    Returns:
        dict: ``images`` (records), ``studies`` (one row per study), ``failures``
        ``[(path, reason)]``, ``num_images``, ``seconds`` (decode to outputs, models already
        built), ``images_per_s``, ``outputs``.
    """
    from .inference_study import (assign_study_ids, load_study_map, study_map_from_inputs,
                                  study_records)
    from spinexr.evaluation.study_level import RULES
    if study_rule not in RULES:
        raise ValueError(f'unknown study rule {study_rule!r}; choose from {RULES}')
    studies_of = study_map_from_inputs(inputs)
    if study_map:
        studies_of.update(load_study_map(study_map))
    from tqdm import tqdm
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise RuntimeError('device cuda requested but torch sees no CUDA device')
    model, spec, names = detector or build_detector(config, checkpoint, device=device, fp16=fp16,
                                                    cfg_options=cfg_options)
    clf = cls_spec = None
    if classifier:
        clf, cls_spec = build_classifier(classifier[0], classifier[1], device=device)
    engine = BatchInferencer(model, spec, names, classifier=clf, cls_spec=cls_spec, device=device,
                             fp16=fp16, score_thr=score_thr, fusion_threshold=fusion_threshold,
                             resize_mode=resize_mode)
    files, failures = collect_inputs(inputs)
    overlay_dir = osp.join(out_dir, 'overlays') if out_dir and overlays else None
    if overlay_dir:
        os.makedirs(overlay_dir, exist_ok=True)
    min_long_side = engine.min_long_side() if fast_decode else None
    if min_long_side is not None and out_dir and overlays:
        min_long_side = max(min_long_side, int(overlay_size))
    # Workers decode and stack each batch (pinned on CUDA); resize/pad/normalise run batched on
    # the device, CPU included (one code path); a writer thread builds records and overlays.
    cuda = torch.device(engine.device).type == 'cuda'
    loader = torch.utils.data.DataLoader(
        ImageFileDataset(files, min_long_side), batch_size=max(1, batch_size), shuffle=False,
        num_workers=workers, collate_fn=collate_decoded, pin_memory=cuda,
        prefetch_factor=4 if workers > 0 else None, persistent_workers=False)
    meta = dict(config=config, checkpoint=checkpoint, classifier=list(classifier or []) or None,
                fusion_threshold=fusion_threshold, score_thr=score_thr, classes=list(names),
                box_format='xyxy, original image pixels', study_rule=study_rule,
                study_map=study_map)
    writer = ResultWriter(names, overlay_dir, overlay_stems(files) if overlay_dir else None)
    start = time.perf_counter()
    # workers=0: decoding runs in a helper thread (overlapping the network; no worker process)
    batches = loader if workers > 0 else prefetch(loader)
    try:
        with tqdm(total=len(files), unit='img', disable=not progress, dynamic_ncols=True) as bar:
            for batch in batches:
                failures.extend((it['path'], it['error']) for it in batch.failures)
                if batch.items:
                    dets = engine.run_batch(batch)
                    writer.put(batch.items, dets, batch.images if overlay_dir else None)
                bar.update(len(batch))
        records = writer.close()
    except BaseException as exc:
        if hasattr(batches, 'close'):  # stop the decoding thread now
            batches.close()
        # nothing handed over is lost: the writer finishes the queued batches, and what was
        # done is written, marked incomplete, before the error goes on
        try:
            records = writer.close()
        except RuntimeError:  # the writer failed too (or was the failure): nothing to add
            records = None
        if out_dir and records is not None:
            assign_study_ids(records, studies_of)
            write_findings(out_dir, records, failures,
                           dict(meta, incomplete=f'stopped after {len(records)} of {len(files)} '
                                f'images: {type(exc).__name__}: {exc}'),
                           studies=study_records(records, names, rule=study_rule),
                           class_names=names)
        raise
    assign_study_ids(records, studies_of)
    studies = study_records(records, names, rule=study_rule)
    outputs = {}
    if out_dir:
        outputs = write_findings(out_dir, records, failures, meta, studies=studies,
                                 class_names=names)
    seconds = time.perf_counter() - start
    return dict(images=records, studies=studies, failures=failures, num_images=len(records),
                seconds=seconds, images_per_s=len(records) / seconds if seconds > 0 else 0.0,
                outputs=outputs)
