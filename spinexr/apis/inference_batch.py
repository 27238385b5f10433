"""The batched device path of :mod:`spinexr.apis.inference`: one stacked uint8 batch per step.

Per batch, in order (the same code on CPU and CUDA):

1. **Worker** (:func:`collate_decoded`, the ``DataLoader``'s ``collate_fn``): the decoded images are
   ordered by size and stacked into ONE ``(N, C, H, W)`` uint8 tensor, padded at the bottom/right
   to the batch's largest image (:func:`spinexr.datasets.collate.yolo_collate`, the training
   path's collation); the ``DataLoader`` pins it (``pin_memory=True`` on CUDA).
2. **Host to device** (:func:`to_device`): one non-blocking copy of that tensor.
3. **Device** (:func:`preprocess_batch`): resize (``F.interpolate`` once per run of images of one
   decoded size, original size and interpolation: one call for a batch of equal files), the
   test pipeline's ``Pad``, padding between images of different sizes, and the model's own data
   preprocessor (BGR->RGB, normalise, pad to its size divisor): applied while the batch is
   written when it is one :class:`~spinexr.apis.inference_preprocess.PixelMap` reproduces (the
   network input is then written once, in the network's memory format), else run on the
   stacked batch.
4. **Device to host** (:func:`pack_results` / :func:`to_host` / :func:`unpack_results`): the
   per-image boxes, scores, labels (and the classifier's probabilities) concatenated on the
   device, copied in ONE transfer, split on the host by the per-image counts.
"""
import math
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .inference_preprocess import DICOM_EXTS, PixelMap, PreprocessSpec, interpolation_for


@dataclass
class DecodedBatch:
    """A batch of decoded files, stacked (what the ``DataLoader`` yields).

    Attributes:
        items (list[dict]): The readable files' records in batch order (``index``, ``path``,
            ``orig_shape``, ``size`` = decoded ``(h, w)``, ``study_uid``), sorted by size.
        failures (list[dict]): Records of files that could not be decoded (``error`` set).
        images (Tensor, optional): ``(len(items), C, H, W)`` uint8; image ``i`` is
            ``images[i, :, :h, :w]``. None when no file of the batch could be read.
    """
    items: List[Dict[str, Any]] = field(default_factory=list)
    failures: List[Dict[str, Any]] = field(default_factory=list)
    images: Optional[Tensor] = None

    def pin_memory(self) -> 'DecodedBatch':
        """Called by the ``DataLoader``'s pinning thread (``pin_memory=True``)."""
        if self.images is not None:
            self.images = self.images.pin_memory()
        return self

    def __len__(self) -> int:
        return len(self.items) + len(self.failures)


def _sort_key(item: Dict[str, Any]) -> tuple:
    """Images with one decoded size, original size and file kind become neighbours: they share
    target size and interpolation, so one resize call covers them."""
    ext = str(item['path']).lower().endswith(DICOM_EXTS)
    return tuple(item['image'].shape[:2]), tuple(item['orig_shape']), ext


def collate_decoded(records: Sequence[Dict[str, Any]]) -> DecodedBatch:
    """Stack :class:`~spinexr.apis.inference_io.ImageFileDataset` records in the worker.

    Grey ``(H, W)`` images stay one channel unless the batch also holds a colour image (then all
    are three channels, grey repeated). Padding (value 0) is never read.

    Args:
        records (Sequence[dict]): Decoded records (``image`` a ``(H, W)`` or ``(H, W, 3)`` uint8
            tensor, or ``error`` set).

    Returns:
        DecodedBatch: The stacked batch.
    """
    from spinexr.datasets.collate import yolo_collate
    good = sorted((r for r in records if r.get('error') is None), key=_sort_key)
    batch = DecodedBatch(failures=[dict(r, image=None) for r in records
                                   if r.get('error') is not None])
    if not good:
        return batch
    channels = 3 if any(r['image'].ndim == 3 for r in good) else 1
    samples = []
    for r in good:
        img = r['image']
        chw = img[None] if img.ndim == 2 else img.permute(2, 0, 1)
        samples.append(dict(inputs=chw.expand(channels, -1, -1), data_samples=None))
        batch.items.append({k: v for k, v in r.items() if k not in ('image', 'display')}
                           | dict(size=tuple(int(s) for s in img.shape[:2])))
    batch.images = yolo_collate(samples, pad_size_divisor=1, pad_value=0)['inputs']
    return batch


def to_device(images: Tensor, device: torch.device) -> Tensor:
    """THE host-to-device copy of a batch: one non-blocking transfer of the stacked uint8
    tensor (pinned by the loader on CUDA, so the copy overlaps with the host's work)."""
    return images.to(device, non_blocking=True)


def to_host(packed: Tensor) -> np.ndarray:
    """THE device-to-host copy of a batch's results (one float32 tensor)."""
    return packed.cpu().numpy()


def _runs(keys: Sequence[Any]) -> List[Tuple[int, int]]:
    """``[start, stop)`` ranges of equal neighbouring keys."""
    runs, start = [], 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            runs.append((start, i))
            start = i
    return runs


def _grey(x: Tensor) -> Tensor:
    """``(n, 3, h, w)`` BGR -> ``(n, 1, h, w)`` luminance, as OpenCV's BGR2GRAY (rounded)."""
    x = x.float()  # python-scalar weights: no host-to-device copy of a weight tensor
    return (x[:, :1] * 0.114 + x[:, 1:2] * 0.587 + x[:, 2:3] * 0.299).round_()


def _resize(x: Tensor, size: Tuple[int, int], mode: str) -> Tensor:
    """Float ``(n, C, h, w)`` in 0..255 -> ``size``, rounded and clamped like a uint8 result.
    Bilinear/bicubic use half-pixel centres without antialiasing (OpenCV's ``INTER_LINEAR``)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode in ('bilinear', 'bicubic'):
        x = F.interpolate(x, size=size, mode=mode, align_corners=False)
    elif mode in ('area', 'nearest'):
        x = F.interpolate(x, size=size, mode=mode)
    else:
        raise ValueError(f'unsupported interpolation {mode!r}')
    return x.round_().clamp_(0, 255)


def _pixel_fill(preprocessor: Any, channels: int, device: torch.device) -> Tensor:
    """Per-channel value (pixel units, input channel order) that the preprocessor turns into
    its ``pad_value``: what the padding between images of different sizes must hold so the
    stacked batch equals the preprocessor's own stacking of a list."""
    pad = float(getattr(preprocessor, 'pad_value', 0) or 0)
    fill = torch.full((channels,), pad, device=device)
    if getattr(preprocessor, '_enable_normalize', False):
        mean = preprocessor.mean.reshape(-1)  # buffers: on the model's device already
        std = preprocessor.std.reshape(-1)
        fill = (mean + pad * std).expand(channels) if mean.numel() == 1 else mean + pad * std
        if getattr(preprocessor, '_channel_conversion', False) and fill.numel() == 3:
            fill = fill.flip(0)
    return fill.float()


def preprocess_batch(images: Tensor, items: Sequence[Dict[str, Any]], spec: PreprocessSpec,
                     preprocessor: Any = None, resize_mode: str = 'auto',
                     pixel_map: Optional[PixelMap] = None, channels_last: bool = False
                     ) -> Tuple[Tensor, List[Dict[str, Any]]]:
    """Resize, pad and stack a batch on its device as the test pipeline would, image by image.

    Every element of the result is written once: each run of images with one geometry is
    resized (if needed), mapped (``pixel_map``) and copied into its place, and only the padding
    around it is filled.

    Args:
        images (Tensor): ``(N, C, H, W)`` uint8 of :class:`DecodedBatch`, on the device.
        items (Sequence[dict]): Its ``items`` (``path``, ``orig_shape``, ``size``).
        spec (PreprocessSpec): The model's test-pipeline geometry.
        preprocessor (optional): The model's data preprocessor (without ``pixel_map``): the
            padding between images is filled with the value it pads with (:func:`_pixel_fill`),
            so that it can run on the result. None: 0.
        resize_mode (str): ``'auto'``: the pipeline's interpolation, ``'area'`` when a DICOM is
            shrunk; ``'pipeline'``, ``'bilinear'``, ``'area'`` force one.
        pixel_map (PixelMap, optional): The model's data preprocessor as a pixel map
            (:meth:`PixelMap.of`): the result is then the network input itself, in network
            units, padded to the preprocessor's size divisor, as the preprocessor would give it;
            the metainfos get its ``batch_input_shape`` and per-image ``pad_shape`` too.
        channels_last (bool): Lay the result out channels-last (the network's memory format).

    Returns:
        tuple: ``(batch, metainfos)``: float ``(N, C', H', W')`` (``C'`` 1 for a grey
        pipeline, else 3; ``H' x W'`` the largest padded image) in 0..255 without ``pixel_map``,
        in network units with it; and per image ``img_id``, ``img_path``, ``ori_shape``,
        ``img_shape``, ``scale_factor`` (w, h: original -> network pixels), ``pad_shape``.
    """
    n, channels = images.shape[:2]
    out_c = 1 if spec.grey else 3
    metas, keys, padded = [], [], []
    for it in items:
        orig_h, orig_w = it['orig_shape']
        new_h, new_w = spec.target_size((orig_h, orig_w))
        mode = interpolation_for(it['path'], it['size'], (new_h, new_w), spec, resize_mode)
        keys.append((tuple(it['size']), (new_h, new_w), mode))
        padded.append(spec.padded_size((new_h, new_w)))
        metas.append(dict(img_id=it['index'], img_path=it['path'], ori_shape=(orig_h, orig_w),
                          img_shape=(new_h, new_w), scale_factor=(new_w / orig_w, new_h / orig_h),
                          pad_shape=padded[-1]))
    height, width = max(p[0] for p in padded), max(p[1] for p in padded)
    device = images.device
    if pixel_map is None:
        fill: Any = _pixel_fill(preprocessor, out_c, device).view(1, -1, 1, 1)
        pad_fill: Any = spec.pad_val
    else:
        height, width = round_up(height, pixel_map.divisor), round_up(width, pixel_map.divisor)
        fill = pixel_map.fill
        pad_fill = pixel_map.apply(torch.full((1, out_c, 1, 1), float(spec.pad_val),
                                              device=device))
        for meta in metas:  # as the preprocessor sets them (pad_shape: as for a list input)
            ph, pw = meta['pad_shape']
            meta.update(batch_input_shape=(height, width),
                        pad_shape=(round_up(ph, pixel_map.divisor),
                                   round_up(pw, pixel_map.divisor)))
    out = torch.empty((n, out_c, height, width), dtype=torch.float32, device=device,
                      memory_format=torch.channels_last if channels_last else
                      torch.contiguous_format)
    for start, stop in _runs(keys):  # one geometry per run (padded follows from it)
        ((h, w), (th, tw), mode), (ph, pw) = keys[start], padded[start]
        x = images[start:stop, :, :h, :w]
        x = _grey(x) if spec.grey and channels == 3 else x.float()
        x = _resize(x, (th, tw), mode)
        region = out[start:stop]
        region[:, :, :th, :tw] = x if pixel_map is None else pixel_map.apply(x)
        _fill(region[:, :, :ph, :pw], th, tw, pad_fill)  # the test pipeline's own Pad
        _fill(region, ph, pw, fill)  # up to the batch's largest image (and size divisor)
    return out, metas


def _fill(region: Tensor, h: int, w: int, value: Any) -> None:
    """Fill what lies outside ``region[..., :h, :w]`` (below and right of it) with ``value``
    (a number or a tensor broadcast to the region's channels)."""
    for part in (region[:, :, h:, :], region[:, :, :h, w:]):
        if part.numel():
            if isinstance(value, Tensor):
                part.copy_(value.expand_as(part))
            else:
                part.fill_(value)


def pack_results(dets: Sequence[Dict[str, Tensor]], probs: Optional[Tensor] = None
                 ) -> Tuple[Tensor, List[int]]:
    """One float32 device tensor holding every image's ``(k, 6)`` rows ``x1 y1 x2 y2 score
    label`` and, after them, the classifier's probabilities; plus the per-image counts (known on
    the host from the tensors' shapes: no synchronisation)."""
    rows, counts = [], []
    for d in dets:
        bboxes = d['bboxes']
        bboxes = bboxes.tensor if hasattr(bboxes, 'tensor') else bboxes
        rows.append(torch.cat([bboxes.reshape(-1, 4).float(), d['scores'].float()[:, None],
                               d['labels'].float()[:, None]], dim=1))
        counts.append(int(rows[-1].shape[0]))
    parts = [torch.cat(rows).reshape(-1)] if rows else []
    if probs is not None:
        parts.append(probs.float().reshape(-1))
    device = parts[0].device if parts else 'cpu'
    return (torch.cat(parts) if parts else torch.zeros(0, device=device)), counts


def unpack_results(host: np.ndarray, counts: Sequence[int], score_thr: float,
                   with_probs: bool) -> Tuple[List[Dict[str, np.ndarray]], Optional[np.ndarray]]:
    """Split the host copy of :func:`pack_results` per image, keeping scores above
    ``score_thr``; returns ``(detections, probabilities or None)``."""
    total = int(sum(counts))
    rows = host[:total * 6].reshape(total, 6)
    probs = host[total * 6:] if with_probs else None
    out, start = [], 0
    for k in counts:
        r = rows[start:start + k]
        start += k
        r = r[r[:, 4] > score_thr]
        out.append(dict(bboxes=r[:, :4].copy(), scores=r[:, 4].copy(),
                        labels=r[:, 5].astype(np.int64)))
    return out, probs


def round_up(size: int, divisor: int) -> int:
    """``size`` rounded up to a multiple of ``divisor``."""
    return int(math.ceil(size / divisor) * divisor)


def prefetch(iterable: Iterable[Any], depth: int = 2) -> Iterator[Any]:
    """Iterate ``iterable`` in a background thread, ``depth`` items ahead.

    With ``workers=0`` the ``DataLoader`` decodes in the thread that iterates it; here that is a
    helper thread, so decoding (OpenCV and pydicom release the GIL) overlaps with the network in
    the main thread without a worker process (no fork, no inter-process copy of the batch).
    An exception of the iterable is raised here, in the consumer.
    """
    q: 'queue.Queue[Any]' = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    done = object()

    def run() -> None:
        try:
            for x in iterable:
                while not stop.is_set():
                    try:
                        q.put((None, x), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put((exc, None))
            return
        q.put((None, done))

    thread = threading.Thread(target=run, name='spinexr-infer-decode', daemon=True)
    thread.start()
    try:
        while True:
            exc, x = q.get()
            if exc is not None:
                raise exc
            if x is done:
                return
            yield x
    finally:
        stop.set()
        while thread.is_alive():  # unblock a pending put, then let the thread end
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.1)
