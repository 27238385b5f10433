"""Batched inference from files: DICOM / PNG / JPEG in, findings (JSON, CSV, overlays) out.

The pipeline, in order:

1. :func:`collect_inputs` expands files, folders (recursively) and ``.txt`` / ``.csv`` lists.
2. Worker processes (a torch ``DataLoader``) decode each file with :func:`read_image`: DICOM
   through :func:`spinexr.io.load_dicom` (display-correct 8-bit: modality LUT, VOI window,
   MONOCHROME1 inverted), other images with OpenCV as mmcv's ``LoadImageFromFile`` would (BGR).
   A file that cannot be read becomes a failure record; the run goes on.
3. On the device, each decoded image is resized as the config's test pipeline says
   (:class:`PreprocessSpec`: mmdet ``Resize`` scale / keep_ratio, optional ``Pad``; on a CPU
   device the workers resize with OpenCV instead, mmcv's own operation); the list is
   handed to the model's own ``data_preprocessor`` (stack, pad, BGR->RGB, normalise) and to
   ``model.predict`` with per-image metainfo (``ori_shape``, ``img_shape``, ``scale_factor``), so
   boxes come back in the pixel grid of the original file (for DICOM: Rows x Columns).
4. Optionally an image classifier (mmpretrain model or ``WeightedEnsembleClassifier``) gives the
   abnormal probability, and decision fusion (:func:`spinexr.evaluation.fusion.gate_predictions`)
   keeps only boxes above 0.5 on images whose probability is below the fusion threshold.

Coordinates: boxes are ``x1, y1, x2, y2`` in original-image pixels (x = column, y = row, origin at
the top-left corner of the first stored pixel), clipped to the image.
"""
import csv
import json
import os
import os.path as osp
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

#: Extensions read as DICOM.
DICOM_EXTS = ('.dcm', '.dicom')
#: Extensions read with OpenCV.
IMAGE_EXTS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
#: Extensions read as lists of paths.
LIST_EXTS = ('.txt', '.csv')
#: Columns of ``findings.csv``.
CSV_FIELDS = ('image_path', 'image_id', 'width', 'height', 'abnormal_prob', 'class_name', 'score',
              'x1', 'y1', 'x2', 'y2')
_NO_FINDING = 'No finding'


# ----------------------------------------------------------------------------- inputs
def _read_list(path: Path) -> List[str]:
    """Paths of a ``.txt`` (one per line, ``#`` comments) or ``.csv`` (``path`` column or first
    column) list; relative paths are taken from the current directory if they exist there, else
    from the list's folder."""
    with path.open(newline='', encoding='utf-8') as f:
        if path.suffix.lower() == '.csv':
            rows = list(csv.reader(f))
            if not rows:
                return []
            header = [c.strip().lower() for c in rows[0]]
            col = header.index('path') if 'path' in header else 0
            looks_like_header = 'path' in header or not osp.exists(rows[0][0].strip())
            entries = [r[col].strip() for r in rows[1 if looks_like_header else 0:] if len(r) > col]
        else:
            entries = [line.strip() for line in f]
    out = []
    for entry in entries:
        if not entry or entry.startswith('#'):
            continue
        if not osp.isabs(entry) and not osp.exists(entry):
            entry = str(path.parent / entry)
        out.append(entry)
    return out


def collect_inputs(inputs: Iterable[str]) -> Tuple[List[str], List[Tuple[str, str]]]:
    """Expand inputs into image files.

    Args:
        inputs (Iterable[str]): Files (DICOM, PNG, JPEG, ...), folders (searched recursively for
            :data:`DICOM_EXTS` and :data:`IMAGE_EXTS`, case-insensitive) and ``.txt`` / ``.csv``
            lists of paths (folders inside lists are expanded too).

    Returns:
        tuple: ``(files, failures)``: files in input order (folders sorted), without duplicates;
        ``(path, reason)`` for inputs that do not exist.
    """
    files: List[str] = []
    failures: List[Tuple[str, str]] = []
    seen = set()

    def add(p: str) -> None:
        key = osp.abspath(p)
        if key not in seen:
            seen.add(key)
            files.append(p)

    def visit(item: str, from_list: bool = False) -> None:
        p = Path(item)
        if p.is_dir():
            found = sorted(str(q) for q in p.rglob('*')
                           if q.is_file() and q.suffix.lower() in DICOM_EXTS + IMAGE_EXTS)
            if not found:
                failures.append((item, 'folder holds no DICOM or image files'))
            for q in found:
                add(q)
        elif p.is_file() and p.suffix.lower() in LIST_EXTS and not from_list:
            for entry in _read_list(p):
                visit(entry, from_list=True)
        elif p.is_file():
            add(item)
        else:
            failures.append((item, 'no such file or folder'))

    for item in inputs:
        visit(str(item))
    return files, failures


def read_image(path: str,
               min_long_side: Optional[int] = None) -> Tuple[np.ndarray, Tuple[int, int]]:
    """Decode one file into a display image and its original size.

    Args:
        path (str): DICOM (by extension or the ``DICM`` magic) or an OpenCV-readable image.
        min_long_side (int, optional): Lets a JPEG 2000 DICOM decode at a reduced resolution whose
            longer side stays ``>= min_long_side`` (see :func:`spinexr.io.load_dicom`).

    Returns:
        tuple: ``(image, (orig_h, orig_w))``: ``uint8`` ``(H, W)`` grey or ``(H, W, 3)`` BGR (the
        decoded size may be below the original for a reduced DICOM decode); the original size is
        the DICOM's Rows x Columns or the image's own size.

    Raises:
        ValueError: The file cannot be decoded (the message names it and the reason).
    """
    ext = osp.splitext(path)[1].lower()
    is_dicom = ext in DICOM_EXTS
    if not is_dicom and ext not in IMAGE_EXTS:
        with open(path, 'rb') as f:
            is_dicom = f.read(132)[128:132] == b'DICM'
    if is_dicom:
        from spinexr.io.dicom import DicomReadError, load_dicom
        try:
            dimg = load_dicom(path, min_long_side=min_long_side)
        except DicomReadError as exc:
            raise ValueError(str(exc)) from None
        return dimg.image, (dimg.orig_height, dimg.orig_width)
    import cv2
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise ValueError(f'{path}: not a readable image (OpenCV could not decode it)')
    if img.dtype == np.uint16:  # as cv2.IMREAD_COLOR does
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ValueError(f'{path}: unsupported pixel type {img.dtype}')
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(img), (int(img.shape[0]), int(img.shape[1]))


class ImageFileDataset(torch.utils.data.Dataset):
    """Decodes files for a ``DataLoader``; a failure is returned as a record, never raised.

    Each item is a dict: ``index``, ``path``, ``image`` (``uint8`` tensor ``(H, W)`` or
    ``(H, W, 3)``, None on failure), ``orig_shape`` ``(h, w)``, ``error`` (str or None) and,
    with ``resize_spec`` and ``keep_display``, ``display`` (the decoded image before resizing).

    Args:
        paths (Sequence[str]): Files.
        min_long_side (int, optional): Reduced JPEG 2000 decode (see :func:`read_image`).
        resize_spec (PreprocessSpec, optional): Resize in the worker with OpenCV (mmcv's own
            operation), for CPU inference; None leaves the resize to :func:`prepare_images`.
        resize_mode (str): See :func:`prepare_images`.
        keep_display (bool): Also return the decoded image (for overlays).
    """

    def __init__(self, paths: Sequence[str], min_long_side: Optional[int] = None,
                 resize_spec: Optional['PreprocessSpec'] = None, resize_mode: str = 'auto',
                 keep_display: bool = False) -> None:
        self.paths = list(paths)
        self.min_long_side = min_long_side
        self.resize_spec = resize_spec
        self.resize_mode = resize_mode
        self.keep_display = keep_display

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        path = self.paths[index]
        item = dict(index=index, path=path, image=None, orig_shape=None, error=None)
        try:
            img, orig_shape = read_image(path, self.min_long_side)
            item['orig_shape'] = orig_shape
            if self.resize_spec is not None:
                import cv2
                size = self.resize_spec.target_size(orig_shape)
                if self.keep_display:
                    item['display'] = torch.from_numpy(img)
                if tuple(img.shape[:2]) != size:
                    mode = interpolation_for(path, img.shape[:2], size, self.resize_spec,
                                             self.resize_mode)
                    img = cv2.resize(img, size[::-1], interpolation=_CV2_INTERP[mode])
            item['image'] = torch.from_numpy(img)
        except Exception as exc:  # noqa: BLE001 - any decode problem is reported, not raised
            msg = str(exc) if str(path) in str(exc) else f'{path}: {type(exc).__name__}: {exc}'
            item['error'] = msg
        return item


def _collate(items: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return items


# ----------------------------------------------------------------------------- preprocessing
@dataclass
class PreprocessSpec:
    """The geometric part of a test pipeline, applied on the device.

    Attributes:
        scale (tuple[int, int], optional): ``Resize.scale`` as ``(w, h)``.
        scale_factor (float | tuple, optional): ``Resize.scale_factor`` (when no ``scale``).
        keep_ratio (bool): ``Resize.keep_ratio`` (mmcv's ``rescale_size`` semantics).
        interpolation (str): ``Resize.interpolation`` (``'bilinear'`` default).
        grey (bool): ``LoadImageFromFile(color_type='grayscale')``: one channel.
        pad_size (tuple[int, int], optional): ``Pad.size`` ``(w, h)`` (bottom/right padding).
        pad_size_divisor (int, optional): ``Pad.size_divisor``.
        pad_to_square (bool): ``Pad.pad_to_square``.
        pad_val (float): Image padding value of ``Pad``.
    """
    scale: Optional[Tuple[int, int]] = None
    scale_factor: Any = None
    keep_ratio: bool = False
    interpolation: str = 'bilinear'
    grey: bool = False
    pad_size: Optional[Tuple[int, int]] = None
    pad_size_divisor: Optional[int] = None
    pad_to_square: bool = False
    pad_val: float = 0.0

    @classmethod
    def from_pipeline(cls, pipeline: Sequence[dict]) -> 'PreprocessSpec':
        """Read a test pipeline; transforms that change geometry other than ``Resize`` / ``Pad``
        raise ``ValueError`` (the inference path could not reproduce them)."""
        spec = cls()
        for t in pipeline:
            name = str(t.get('type', '')).split('.')[-1]
            if name in ('LoadImageFromFile', 'LoadImageFromNDArray'):
                spec.grey = t.get('color_type', 'color') in ('grayscale', 'unchanged_grey')
            elif name == 'Resize':
                scale = t.get('scale')
                spec.scale = (int(scale), int(scale)) if isinstance(scale, (int, float)) else (
                    tuple(int(s) for s in scale) if scale is not None else None)
                spec.scale_factor = t.get('scale_factor')
                spec.keep_ratio = bool(t.get('keep_ratio', False))
                spec.interpolation = t.get('interpolation', 'bilinear')
                if spec.interpolation not in ('nearest', 'bilinear', 'bicubic', 'area'):
                    raise ValueError(f'Resize interpolation {spec.interpolation!r} is not '
                                     'supported (nearest, bilinear, bicubic, area)')
            elif name == 'Pad':
                size = t.get('size')
                spec.pad_size = tuple(int(s) for s in size) if size is not None else None
                spec.pad_size_divisor = t.get('size_divisor')
                spec.pad_to_square = bool(t.get('pad_to_square', False))
                val = t.get('pad_val', 0)
                val = val.get('img', 0) if isinstance(val, dict) else val
                spec.pad_val = float(val[0] if isinstance(val, (list, tuple)) else val)
            elif name in ('LoadAnnotations', 'PackDetInputs', 'PackInputs'):
                pass  # no geometry at test time
            else:
                raise ValueError(f'test pipeline transform {name!r} is not supported by the '
                                 'batched inference path (supported: LoadImageFromFile, Resize, '
                                 'Pad, LoadAnnotations, PackDetInputs/PackInputs)')
        return spec

    def target_size(self, orig_hw: Tuple[int, int]) -> Tuple[int, int]:
        """``(h, w)`` after ``Resize``, computed from the ORIGINAL size as mmdet/mmcv do."""
        from mmcv.image.geometric import _scale_size, rescale_size
        h, w = orig_hw
        if self.scale is not None:
            scale = self.scale
        elif self.scale_factor is not None:
            scale = _scale_size((w, h), self.scale_factor)
        else:
            return h, w
        if self.keep_ratio:
            new_w, new_h = rescale_size((w, h), tuple(scale))
        else:
            new_w, new_h = scale
        return int(new_h), int(new_w)

    def padded_size(self, hw: Tuple[int, int]) -> Tuple[int, int]:
        """``(h, w)`` after ``Pad`` (bottom/right), or ``hw`` without one."""
        h, w = hw
        if self.pad_to_square:
            h = w = max(h, w)
        if self.pad_size is not None:
            w, h = max(w, self.pad_size[0]), max(h, self.pad_size[1])
        if self.pad_size_divisor:
            d = int(self.pad_size_divisor)
            h, w = -(-h // d) * d, -(-w // d) * d
        return h, w


def resize_on_device(img: torch.Tensor, size: Tuple[int, int], mode: str = 'bilinear'
                     ) -> torch.Tensor:
    """Resize a ``(C, h, w)`` image to ``size = (H, W)``; returns rounded float values in 0..255.

    ``'bilinear'`` (and ``'bicubic'``) use half-pixel centres without antialiasing, as OpenCV's
    ``INTER_LINEAR`` (mmcv's default) does; ``'area'`` averages (OpenCV's ``INTER_AREA`` for
    integer factors; the converter shrinks DICOMs with it). ``'nearest'`` is supported too.
    """
    x = img.float()
    if tuple(x.shape[-2:]) != tuple(size):
        x = x[None]
        if mode in ('bilinear', 'bicubic'):
            x = F.interpolate(x, size=size, mode=mode, align_corners=False)
        elif mode in ('area', 'nearest'):
            x = F.interpolate(x, size=size, mode=mode)
        else:
            raise ValueError(f'unsupported interpolation {mode!r}')
        x = x[0].round_().clamp_(0, 255)
    return x


#: OpenCV flags of mmcv's interpolation names.
_CV2_INTERP = dict(nearest=0, bilinear=1, bicubic=2, area=3)


def interpolation_for(path: str, src_hw: Tuple[int, int], dst_hw: Tuple[int, int],
                      spec: PreprocessSpec, resize_mode: str = 'auto') -> str:
    """Interpolation for one image (see ``resize_mode`` of :func:`prepare_images`)."""
    if resize_mode == 'auto':
        shrink = dst_hw[0] * dst_hw[1] < src_hw[0] * src_hw[1]
        if shrink and osp.splitext(path)[1].lower() in DICOM_EXTS:
            return 'area'
        return spec.interpolation
    return spec.interpolation if resize_mode == 'pipeline' else resize_mode


def to_chw(img: torch.Tensor, grey: bool) -> torch.Tensor:
    """``(H, W)`` or ``(H, W, 3)`` -> ``(1 or 3, H, W)`` without copying where possible."""
    if img.ndim == 2:
        return img[None]
    x = img.permute(2, 0, 1)
    if grey:  # luminance as OpenCV's BGR2GRAY
        w = torch.tensor([0.114, 0.587, 0.299], device=x.device).view(3, 1, 1)
        x = (x.float() * w).sum(0, keepdim=True).round()
    return x


def prepare_images(items: Sequence[Dict[str, Any]], spec: PreprocessSpec, device: torch.device,
                   resize_mode: str = 'auto') -> Tuple[List[torch.Tensor], List[Dict[str, Any]]]:
    """Resize (and pad) decoded images on ``device`` as the test pipeline would.

    Args:
        items (Sequence[dict]): Records of :class:`ImageFileDataset` without errors.
        spec (PreprocessSpec): The test pipeline's geometry.
        device (torch.device): Where the tensors go.
        resize_mode (str): ``'auto'``: the pipeline's interpolation for files already at or below
            the target size and for PNG/JPEG inputs, ``'area'`` when a DICOM is shrunk (as the
            dataset converter does); or force ``'bilinear'`` / ``'area'``.

    Returns:
        tuple: ``(inputs, metainfos)``: ``(C, H, W)`` float tensors (0..255, channels as
        ``LoadImageFromFile`` gives them: BGR or 3 x grey, or one grey channel) and per-image
        ``ori_shape``, ``img_shape``, ``scale_factor`` (w, h; original -> network pixels).
    """
    inputs, metas = [], []
    for it in items:
        img = it['image'].to(device, non_blocking=True)
        x = to_chw(img, spec.grey)
        orig_h, orig_w = it['orig_shape']
        new_h, new_w = spec.target_size((orig_h, orig_w))
        mode = interpolation_for(it['path'], tuple(x.shape[-2:]), (new_h, new_w), spec,
                                 resize_mode)
        x = resize_on_device(x, (new_h, new_w), mode)  # no-op if the worker resized
        pad_h, pad_w = spec.padded_size((new_h, new_w))
        if (pad_h, pad_w) != (new_h, new_w):
            x = F.pad(x, (0, pad_w - new_w, 0, pad_h - new_h), value=spec.pad_val)
        if x.shape[0] == 1 and not spec.grey:
            x = x.expand(3, -1, -1)
        inputs.append(x)
        metas.append(dict(img_id=it['index'], img_path=it['path'], ori_shape=(orig_h, orig_w),
                          img_shape=(new_h, new_w),
                          scale_factor=(new_w / orig_w, new_h / orig_h)))
    return inputs, metas


def boxes_to_network(bboxes: np.ndarray, meta: Dict[str, Any]) -> np.ndarray:
    """Forward map of :meth:`YOLO11Detector.to_original` / mmdet's rescale: original -> network
    pixels (used to test the round trip)."""
    out = np.asarray(bboxes, dtype=np.float64).copy()
    out[:, 0::2] *= meta['scale_factor'][0]
    out[:, 1::2] *= meta['scale_factor'][1]
    return out


# ----------------------------------------------------------------------------- models
def _load_config(config: str, cfg_options: Optional[dict] = None):
    from mmengine.config import Config
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file not found: {config}')
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


def build_detector(config: str, checkpoint: Optional[str], device: str = 'cpu',
                   fp16: bool = False, fuse: bool = True, channels_last: Optional[bool] = None,
                   cfg_options: Optional[dict] = None
                   ) -> Tuple[torch.nn.Module, PreprocessSpec, List[str]]:
    """Build any mmdet detector from a config (incl. ``YOLO11Detector``) and load a checkpoint.

    Args:
        config (str): mmdet config file.
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

    Returns:
        tuple: ``(model in eval mode on device, PreprocessSpec, class names)``.
    """
    from mmengine.registry import DefaultScope

    import spinexr.models  # noqa: F401  (registration)
    from mmdet.registry import MODELS
    from spinexr.datasets.metainfo import CLASSES
    cfg = _load_config(config, cfg_options)
    if 'pretrained' in cfg.model and cfg.model.get('type') == 'YOLO11Detector':
        cfg.model.pretrained = None
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')):
        model = MODELS.build(cfg.model)
    meta = {}
    if checkpoint:
        meta = (_load_weights(model, checkpoint).get('meta') or {}).get('dataset_meta') or {}
    names = meta.get('classes') or (cfg.get('metainfo') or {}).get('classes') or CLASSES
    model.eval()
    if fuse and hasattr(getattr(model, 'yolo', None), 'fuse'):
        model.yolo.fuse(verbose=False)
    if hasattr(model, 'yolo'):  # in-place activations, as Ultralytics' loader sets for inference
        for m in model.yolo.modules():
            if hasattr(m, 'inplace'):
                m.inplace = True
    model.to(device)
    if hasattr(model, 'yolo'):
        if channels_last is None:
            import platform
            channels_last = str(device).startswith('cuda') or (
                platform.machine() in ('x86_64', 'AMD64') and torch.backends.mkldnn.is_available()
                and torch.backends.mkldnn.enabled)
        if channels_last:
            model.yolo.to(memory_format=torch.channels_last)
            model._spinexr_channels_last = True
            if hasattr(model, 'channels_last'):  # the adapter's own switch agrees
                model.channels_last = True
        if fp16 and str(device).startswith('cuda'):
            model.half()
            model._spinexr_half = True
    return model, PreprocessSpec.from_pipeline(_test_pipeline(cfg)), list(names)


def build_classifier(config: str, checkpoint: Optional[str], device: str = 'cpu'
                     ) -> Tuple[torch.nn.Module, PreprocessSpec]:
    """Build an mmpretrain classifier (or ``WeightedEnsembleClassifier``) and load a checkpoint.

    The config's top-level ``data_preprocessor`` (mmpretrain's convention) is merged into the
    model, so the model normalises as it was trained.
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
class BatchInferencer:
    """Detector (+ optional classifier) on batches of decoded images.

    Args:
        detector (nn.Module): From :func:`build_detector`.
        det_spec (PreprocessSpec): The detector's test-pipeline geometry.
        class_names (Sequence[str]): Names by label.
        classifier (nn.Module, optional): From :func:`build_classifier`.
        cls_spec (PreprocessSpec, optional): The classifier's test-pipeline geometry.
        device (str): Device of the models.
        fp16 (bool): Autocast to float16 on CUDA (a half YOLO11 model runs in half directly).
        score_thr (float): Boxes at or below this score are dropped.
        fusion_threshold (float, optional): Decision fusion: on images whose abnormal probability
            is below it, only boxes with score > ``fusion_box_thr`` are kept (needs a classifier).
        fusion_box_thr (float): Box score kept on probably-normal images (VinDr paper: 0.5).
        resize_mode (str): See :func:`prepare_images`.
    """

    def __init__(self, detector, det_spec: PreprocessSpec, class_names: Sequence[str],
                 classifier=None, cls_spec: Optional[PreprocessSpec] = None,
                 device: str = 'cpu', fp16: bool = False, score_thr: float = 0.05,
                 fusion_threshold: Optional[float] = None, fusion_box_thr: float = 0.5,
                 resize_mode: str = 'auto') -> None:
        if fusion_threshold is not None and classifier is None:
            raise ValueError('decision fusion (fusion_threshold) needs a classifier')
        self.detector, self.det_spec = detector, det_spec
        self.classifier, self.cls_spec = classifier, cls_spec
        self.class_names = list(class_names)
        self.device = torch.device(device)
        self.half = bool(getattr(detector, '_spinexr_half', False))
        self.channels_last = bool(getattr(detector, '_spinexr_channels_last', False))
        self.autocast = fp16 and self.device.type == 'cuda'
        self.score_thr = float(score_thr)
        self.fusion_threshold = fusion_threshold
        self.fusion_box_thr = float(fusion_box_thr)
        self.resize_mode = resize_mode
        test_cfg = getattr(detector, 'test_cfg', None)
        if isinstance(test_cfg, dict) and 'conf_thr' in test_cfg:  # YOLO11: NMS only what is kept
            if not hasattr(detector, '_spinexr_conf_thr'):  # the config's value, kept once
                detector._spinexr_conf_thr = float(test_cfg['conf_thr'])
            test_cfg['conf_thr'] = max(detector._spinexr_conf_thr, self.score_thr)

    def min_long_side(self) -> Optional[int]:
        """Smallest decoded size both models need (for the reduced DICOM decode)."""
        sizes = []
        for spec in (self.det_spec, self.cls_spec):
            if spec is None:
                continue
            if spec.scale is None:
                return None
            sizes.append(max(spec.scale))
        return max(sizes) if sizes else None

    def _autocast(self):
        if self.autocast and not self.half:
            return torch.autocast(device_type='cuda', dtype=torch.float16)
        import contextlib
        return contextlib.nullcontext()

    @torch.inference_mode()
    def detect(self, items: Sequence[Dict[str, Any]]) -> List[Dict[str, np.ndarray]]:
        """Boxes (original pixels), scores, labels per image, above ``score_thr``."""
        from mmdet.structures import DetDataSample
        inputs, metas = prepare_images(items, self.det_spec, self.device, self.resize_mode)
        samples = [DetDataSample(metainfo=m) for m in metas]
        data = self.detector.data_preprocessor(dict(inputs=inputs, data_samples=samples), False)
        x = data['inputs'].half() if self.half else data['inputs']
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            results = self.detector.predict(x, data['data_samples'])
        out = []
        for res in results:
            pred = res.pred_instances
            keep = pred.scores > self.score_thr
            bboxes = pred.bboxes[keep]
            bboxes = bboxes.tensor if hasattr(bboxes, 'tensor') else bboxes
            out.append(dict(bboxes=bboxes.float().cpu().numpy().reshape(-1, 4),
                            scores=pred.scores[keep].float().cpu().numpy(),
                            labels=pred.labels[keep].cpu().numpy().astype(np.int64)))
        return out

    @torch.inference_mode()
    def classify(self, items: Sequence[Dict[str, Any]]) -> np.ndarray:
        """Abnormal probability per image."""
        from spinexr.evaluation.roc import positive_probability
        inputs, _ = prepare_images(items, self.cls_spec, self.device, self.resize_mode)
        data = self.classifier.data_preprocessor(dict(inputs=inputs), False)
        with self._autocast():
            samples = self.classifier(inputs=data['inputs'], mode='predict')
        return positive_probability(torch.stack([s.pred_score for s in samples]))

    def __call__(self, items: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """Detections (and ``abnormal_prob``) for a batch of decoded records."""
        dets = self.detect(items)
        if self.classifier is None:
            return [dict(d, abnormal_prob=None) for d in dets]
        probs = self.classify(items)
        if self.fusion_threshold is not None:
            from spinexr.evaluation.coco_ap import ImagePred
            from spinexr.evaluation.fusion import gate_predictions
            preds = [ImagePred(img_id=i, **d) for i, d in enumerate(dets)]
            gated = gate_predictions(preds, [], {str(i): float(p) for i, p in enumerate(probs)},
                                     operating_point=self.fusion_threshold,
                                     box_score_thr=self.fusion_box_thr)
            dets = [dict(bboxes=g.bboxes.reshape(-1, 4), scores=g.scores, labels=g.labels)
                    for g in gated]
        return [dict(d, abnormal_prob=float(p)) for d, p in zip(dets, probs)]


def draw_overlay(image: np.ndarray, orig_shape: Tuple[int, int], bboxes: np.ndarray,
                 scores: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
                 abnormal_prob: Optional[float] = None) -> np.ndarray:
    """Draw boxes (original-pixel coordinates), class name and score on the display image.

    Returns:
        np.ndarray: ``(H, W, 3)`` BGR image at the decoded size (boxes scaled onto it).
    """
    import cv2

    from spinexr.datasets.metainfo import PALETTE
    canvas = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    h, w = canvas.shape[:2]
    sx, sy = w / orig_shape[1], h / orig_shape[0]
    thick = max(1, round(max(h, w) / 500))
    font = max(0.35, max(h, w) / 1600)
    for box, score, label in sorted(zip(bboxes, scores, labels), key=lambda t: t[1]):
        r, g, b = PALETTE[int(label) % len(PALETTE)]
        x1, y1, x2, y2 = (int(round(v)) for v in (box[0] * sx, box[1] * sy, box[2] * sx,
                                                   box[3] * sy))
        cv2.rectangle(canvas, (x1, y1), (x2, y2), (b, g, r), thick)
        name = class_names[label] if 0 <= label < len(class_names) else f'class_{label}'
        text = f'{name} {score:.2f}'
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        ty = y1 - 2 if y1 - th - base - 2 >= 0 else y1 + th + base + 2
        cv2.rectangle(canvas, (x1, ty - th - base), (x1 + tw + 2, ty + 1), (b, g, r), -1)
        cv2.putText(canvas, text, (x1 + 1, ty - base), cv2.FONT_HERSHEY_SIMPLEX, font,
                    (255, 255, 255), 1, cv2.LINE_AA)
    if abnormal_prob is not None:
        cv2.putText(canvas, f'abnormal p={abnormal_prob:.3f}', (4, int(30 * font) + 4),
                    cv2.FONT_HERSHEY_SIMPLEX, font, (0, 255, 255), 1, cv2.LINE_AA)
    return canvas


def _record(item: Dict[str, Any], det: Dict[str, Any], class_names: Sequence[str]) -> dict:
    h, w = item['orig_shape']
    findings = []
    for box, score, label in zip(det['bboxes'], det['scores'], det['labels']):
        name = class_names[label] if 0 <= label < len(class_names) else f'class_{label}'
        findings.append(dict(class_name=name, class_id=int(label), score=round(float(score), 5),
                             box=[round(float(v), 2) for v in box]))
    findings.sort(key=lambda f: -f['score'])
    prob = det.get('abnormal_prob')
    return dict(image_path=str(item['path']), image_id=Path(item['path']).stem, width=int(w),
                height=int(h), abnormal_prob=None if prob is None else round(prob, 5),
                findings=findings)


def write_findings(out_dir: str, records: Sequence[dict], failures: Sequence[Tuple[str, str]],
                   meta: Optional[dict] = None) -> Dict[str, str]:
    """Write ``findings.json``, ``findings.csv`` and ``failures.txt`` under ``out_dir``.

    The CSV has one row per finding (:data:`CSV_FIELDS`) and one ``No finding`` row, without
    score and box, for an image without any; the JSON holds the same per image plus ``meta``.
    """
    os.makedirs(out_dir, exist_ok=True)
    paths = {k: osp.join(out_dir, f) for k, f in (('json', 'findings.json'),
                                                  ('csv', 'findings.csv'),
                                                  ('failures', 'failures.txt'))}
    payload = dict(meta=meta or {}, images=list(records),
                   failures=[dict(path=p, error=e) for p, e in failures])
    with open(paths['json'], 'w', encoding='utf-8') as f:
        json.dump(payload, f, indent=1)
    with open(paths['csv'], 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(CSV_FIELDS)
        for rec in records:
            head = [rec['image_path'], rec['image_id'], rec['width'], rec['height'],
                    '' if rec['abnormal_prob'] is None else rec['abnormal_prob']]
            if not rec['findings']:
                writer.writerow(head + [_NO_FINDING, '', '', '', '', ''])
            for fd in rec['findings']:
                writer.writerow(head + [fd['class_name'], fd['score'], *fd['box']])
    with open(paths['failures'], 'w', encoding='utf-8') as f:
        for p, e in failures:
            f.write(f'{p}\t{e}\n')
    return paths


def run_inference(inputs: Sequence[str], config: str, checkpoint: Optional[str],
                  out_dir: Optional[str] = None, classifier: Optional[Sequence[str]] = None,
                  fusion_threshold: Optional[float] = None, batch_size: int = 8,
                  workers: int = 2, device: str = 'cpu', score_thr: float = 0.05,
                  fp16: bool = False, overlays: bool = True, resize_mode: str = 'auto',
                  fast_decode: bool = True, overlay_size: int = 1024, progress: bool = True,
                  cfg_options: Optional[dict] = None, detector=None) -> Dict[str, Any]:
    """Run the whole pipeline: inputs -> decode (workers) -> batched models -> outputs.

    Args:
        inputs (Sequence[str]): Files, folders, ``.txt`` / ``.csv`` lists.
        config (str): Detector config. checkpoint (str): Its checkpoint (None: initial weights).
        out_dir (str, optional): Output folder (``findings.json``, ``findings.csv``,
            ``failures.txt``, ``overlays/<image_id>.png``); None writes nothing.
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

    Returns:
        dict: ``images`` (records), ``failures`` ``[(path, reason)]``, ``num_images``,
        ``seconds`` (decode to outputs, models already built), ``images_per_s``, ``outputs``.
    """
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
    # On the CPU the resize runs in the decoding workers (OpenCV, as mmcv); on a GPU, batched on
    # the device. With a classifier (a second input size) it always runs in prepare_images.
    worker_resize = torch.device(device).type == 'cpu' and clf is None
    dataset = ImageFileDataset(files, min_long_side, resize_spec=spec if worker_resize else None,
                               resize_mode=resize_mode, keep_display=overlay_dir is not None)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=max(1, batch_size), shuffle=False, num_workers=workers,
        collate_fn=_collate, pin_memory=torch.device(device).type == 'cuda',
        prefetch_factor=4 if workers > 0 else None)
    pool = ThreadPoolExecutor(max_workers=2) if overlay_dir else None
    records, futures, used = [], [], set()
    start = time.perf_counter()
    with tqdm(total=len(files), unit='img', disable=not progress, dynamic_ncols=True) as bar:
        for batch in loader:
            good = [it for it in batch if it['error'] is None]
            failures.extend((it['path'], it['error']) for it in batch if it['error'] is not None)
            for it, det in zip(good, engine(good) if good else []):
                rec = _record(it, det, names)
                records.append(rec)
                if pool is not None:
                    stem, n = rec['image_id'], 1
                    while stem in used:
                        stem, n = f"{rec['image_id']}_{n}", n + 1
                    used.add(stem)
                    rec['overlay'] = osp.join(overlay_dir, stem + '.png')
                    display = it.get('display', it['image'])
                    futures.append(pool.submit(_write_overlay, rec['overlay'], display.numpy(),
                                               it['orig_shape'], det, names))
            bar.update(len(batch))
    for fut in futures:
        fut.result()
    if pool is not None:
        pool.shutdown()
    outputs = {}
    if out_dir:
        meta = dict(config=config, checkpoint=checkpoint, classifier=list(classifier or []) or None,
                    fusion_threshold=fusion_threshold, score_thr=score_thr, classes=list(names),
                    box_format='xyxy, original image pixels')
        outputs = write_findings(out_dir, records, failures, meta)
    seconds = time.perf_counter() - start
    return dict(images=records, failures=failures, num_images=len(records), seconds=seconds,
                images_per_s=len(records) / seconds if seconds > 0 else 0.0, outputs=outputs)


def _write_overlay(path: str, image: np.ndarray, orig_shape: Tuple[int, int], det: dict,
                   names: Sequence[str]) -> None:
    import cv2
    canvas = draw_overlay(image, orig_shape, det['bboxes'], det['scores'], det['labels'], names,
                          det.get('abnormal_prob'))
    if not cv2.imwrite(path, canvas):
        raise OSError(f'could not write overlay {path}')
