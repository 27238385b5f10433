"""Box-level copy-paste of rare-class lesions, without masks.

Why this exists: mmdet's ``CopyPaste`` pastes *instance masks* and needs both images at the same
size (it runs after a fixed-size ``Resize``/``Pad`` and requires ``gt_masks``); Ultralytics'
``copy_paste`` also works only on segment polygons and silently does nothing with box-only labels.
VinDr-SpineXR has boxes only, so neither can oversample its rare lesions. :class:`BoxCopyPaste`
cuts the box of a rare-class lesion (plus a margin of context) out of another training image,
rescales it so the lesion keeps its physical size in the destination, feathers the cut's edges so
no rectangular seam remains, places it where it does not hide existing lesions, and appends the box
and label.
"""
import math
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine import fileio
from mmengine.logging import print_log

from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes
from spinexr.datasets.metainfo import CLASSES
from spinexr.utils.data_root import check_resolved


def coco_box_shares(coco: dict, classes: Sequence[str] = CLASSES) -> np.ndarray:
    """Share of each class among the (non-crowd, at least 1x1 px) boxes of a COCO dict.

    Args:
        coco (dict): COCO detection dict (``annotations`` and ``categories``).
        classes (Sequence[str]): Class names in label order; other categories are ignored.

    Returns:
        np.ndarray: ``(len(classes), )`` shares summing to 1 (zeros if there is no box).
    """
    name2label = {n: i for i, n in enumerate(classes)}
    cat2label = {c['id']: name2label[c['name']]
                 for c in coco['categories'] if c['name'] in name2label}
    labels = [cat2label[a['category_id']] for a in coco['annotations']
              if not a.get('iscrowd', 0) and a['category_id'] in cat2label
              and a['bbox'][2] >= 1 and a['bbox'][3] >= 1]
    counts = np.bincount(labels, minlength=len(classes)).astype(np.float64)
    return counts / max(1.0, counts.sum())


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def feather_mask(height: int, width: int, box: Sequence[float], min_feather: float) -> np.ndarray:
    """Alpha mask of a crop: 1 inside ``box``, falling smoothly to 0 at the crop's border.

    Each side ramps over the context margin between the crop border and the box (at least
    ``min_feather`` px, eating into the box where the margin is thinner), with a smoothstep profile,
    so the blended result is continuous and has no step at the crop border.

    Args:
        height (int): Crop height.
        width (int): Crop width.
        box (Sequence[float]): ``(x1, y1, x2, y2)`` of the lesion inside the crop.
        min_feather (float): Minimum ramp width in pixels.

    Returns:
        np.ndarray: ``(height, width)`` float32 mask in [0, 1].
    """

    def profile(n: int, lo: float, hi: float) -> np.ndarray:
        c = np.arange(n, dtype=np.float32) + 0.5
        w_lo = max(lo, min_feather)
        w_hi = max(n - hi, min_feather)
        return np.minimum(_smoothstep(c / w_lo), _smoothstep((n - c) / w_hi))

    x1, y1, x2, y2 = box
    return (profile(height, y1, y2)[:, None] * profile(width, x1, x2)[None, :]).astype(np.float32)


@TRANSFORMS.register_module()
class BoxCopyPaste(BaseTransform):
    """Paste rare-class lesions cut (with context) from other training images; boxes only.

    With probability ``prob`` it pastes 1..``max_num_pasted`` instances. Each is drawn by first
    picking a rare class uniformly, then one of its boxes uniformly (never from the destination
    image itself). Rare classes are those whose share of all boxes in ``ann_file`` is below
    ``rare_thr`` (or the names in ``rare_classes``). The source crop (box plus ``context`` x its
    size on each side) is loaded lazily and cached, and rescaled per axis by
    ``(dest px per original px) / (source px per original px)``, from ``orig_width`` /
    ``orig_height`` of the COCO image records (the converter's metadata), so the lesion keeps its
    physical size whatever resizing happened before. It is alpha-blended with :func:`feather_mask`
    and, optionally, shifted in intensity so its context ring matches the destination's local
    background. A placement is accepted only if the new box covers no existing (or already
    pasted) box by more than ``max_ioa`` of that box's area. Known limit: the position is uniform
    over the image, so a lesion may land in soft tissue beside the spine.

    Place it after ``LoadAnnotations`` and before ``Mosaic``/``MixUp``/``PackDetInputs``; it works
    before or after ``Resize`` (the scale is read from the current image). It serves the mmdet
    detectors and the YOLO11 adapter alike, both run mmdet pipelines on the same dataset.

    Required Keys:

    - img
    - img_path (to find the destination's original size and to skip self-pastes)
    - ori_shape (fallback when the image is not in ``ann_file``)
    - gt_bboxes (HorizontalBoxes or np.ndarray, optional)
    - gt_bboxes_labels (np.int64, optional)
    - gt_ignore_flags (bool, optional)
    - orig_width, orig_height (optional, take precedence over ``ann_file``)

    Modified Keys:

    - img
    - gt_bboxes
    - gt_bboxes_labels
    - gt_ignore_flags

    Args:
        ann_file (str): COCO json of the training split (the converter's
            ``annotations/train.json``); relative paths are joined to ``data_root``.
        data_root (str): Dataset root. Defaults to ''. In a config, write ``'{data_root}'`` to
            follow the config's top-level ``data_root`` (resolved by the runner); a path still
            holding that placeholder is refused.
        img_prefix (str): Folder of the images relative to ``data_root`` (``file_name`` is joined to
            it). Defaults to '' (the converter's ``file_name`` already holds ``train/``).
        prob (float): Probability of pasting into an image. Defaults to 0.2.
        rare_thr (float): Classes whose box share is below this are rare. Defaults to 0.05.
        rare_classes (Sequence[str], optional): Explicit rare class names (overrides ``rare_thr``).
        classes (Sequence[str], optional): Class names in label order; defaults to the VinDr
            classes.
        max_num_pasted (int): Maximum instances pasted per image. Defaults to 3.
        max_ioa (float): Maximum share of an existing box the pasted box may cover. Defaults to 0.1.
        context (float): Margin cut around the box, as a fraction of its width/height per side;
            it is the feathering zone. Defaults to 0.25.
        min_feather (float): Minimum feather width in destination pixels. Defaults to 2.
        match_intensity (bool): Shift the crop so its context ring matches the destination's local
            mean. Defaults to True.
        scale_range (tuple[float, float]): Extra random scale factor on top of the physical-size
            rescale. Defaults to (1.0, 1.0).
        max_tries (int): Placement attempts per instance. Defaults to 20.
        cache_size (int): Crops kept in memory. Defaults to 512.
        seed (int, optional): Seed of a private generator. None draws a fresh generator from numpy's
            global state for each call (which mmengine seeds per worker), so runs are reproducible
            under ``randomness.seed``. A fixed seed gives every dataloader worker the same stream.
        backend_args (dict, optional): mmengine file backend arguments. Defaults to None.
    """

    def __init__(self,
                 ann_file: str,
                 data_root: str = '',
                 img_prefix: str = '',
                 prob: float = 0.2,
                 rare_thr: float = 0.05,
                 rare_classes: Optional[Sequence[str]] = None,
                 classes: Optional[Sequence[str]] = None,
                 max_num_pasted: int = 3,
                 max_ioa: float = 0.1,
                 context: float = 0.25,
                 min_feather: float = 2.0,
                 match_intensity: bool = True,
                 scale_range: Tuple[float, float] = (1.0, 1.0),
                 max_tries: int = 20,
                 cache_size: int = 512,
                 seed: Optional[int] = None,
                 backend_args: Optional[dict] = None) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        if max_num_pasted < 1:
            raise ValueError(f'max_num_pasted must be >= 1, got {max_num_pasted}')
        # '{data_root}' left in a path means the config was not resolved (spinexr.utils.data_root)
        check_resolved(data_root, 'data_root', 'BoxCopyPaste')
        check_resolved(ann_file, 'ann_file', 'BoxCopyPaste')
        self.ann_file = ann_file if (not data_root or osp.isabs(ann_file)) else osp.join(
            data_root, ann_file)
        self.img_root = osp.join(data_root, img_prefix) if (data_root or img_prefix) else ''
        self.prob = float(prob)
        self.rare_thr = float(rare_thr)
        self.classes = tuple(classes) if classes is not None else CLASSES
        self.max_num_pasted = int(max_num_pasted)
        self.max_ioa = float(max_ioa)
        self.context = float(context)
        self.min_feather = float(min_feather)
        self.match_intensity = bool(match_intensity)
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.max_tries = int(max_tries)
        self.cache_size = int(cache_size)
        self.seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else None
        self.backend_args = backend_args
        self._cache: 'OrderedDict[int, Tuple[np.ndarray, Tuple[float, float, float, float]]]' = \
            OrderedDict()
        self._build_bank(rare_classes)

    # ------------------------------------------------------------------ source bank
    def _build_bank(self, rare_classes: Optional[Sequence[str]]) -> None:
        # JSON whatever the name: mmengine would unpickle a '.pkl' ann_file (and run its code)
        coco = fileio.load(self.ann_file, file_format='json', backend_args=self.backend_args)
        for key in ('images', 'annotations', 'categories'):
            if key not in coco:
                raise ValueError(f"{self.ann_file}: not a COCO detection file, no '{key}'")
        name2label = {n: i for i, n in enumerate(self.classes)}
        cat2label = {c['id']: name2label[c['name']] for c in coco['categories']
                     if c['name'] in name2label}
        #: image id -> (path, png_w, png_h, orig_w, orig_h)
        self.images: Dict[int, Tuple[str, int, int, float, float]] = {}
        self._path2img: Dict[str, int] = {}
        for im in coco['images']:
            try:
                path = osp.join(self.img_root, im['file_name'])
                w, h = int(im['width']), int(im['height'])
            except KeyError as e:
                raise ValueError(f'{self.ann_file}: image record {im.get("id")} lacks {e}') from e
            self.images[im['id']] = (path, w, h, float(im.get('orig_width', w)),
                                     float(im.get('orig_height', h)))
            self._path2img[osp.normpath(path)] = im['id']
        #: rows of (image id, label, x1, y1, x2, y2) of every usable box, in PNG pixels
        rows = []
        for a in coco['annotations']:
            if a.get('iscrowd', 0) or a['category_id'] not in cat2label:
                continue
            x, y, w, h = a['bbox']
            if w < 1 or h < 1:
                continue
            if a['image_id'] not in self.images:
                raise ValueError(f'{self.ann_file}: annotation {a.get("id")} refers to unknown '
                                 f'image_id {a["image_id"]}')
            rows.append((a['image_id'], cat2label[a['category_id']], x, y, x + w, y + h))
        self.sources = rows
        self.box_share = coco_box_shares(coco, self.classes)
        if rare_classes is not None:
            unknown = [n for n in rare_classes if n not in name2label]
            if unknown:
                raise ValueError(f'rare_classes {unknown} are not in classes {self.classes}')
            rare = [name2label[n] for n in rare_classes]
        else:
            rare = [k for k in range(len(self.classes)) if self.box_share[k] < self.rare_thr]
        #: rare label -> indices into self.sources
        self.rare_sources: Dict[int, List[int]] = {
            k: [i for i, r in enumerate(rows) if r[1] == k] for k in rare}
        self.rare_sources = {k: v for k, v in self.rare_sources.items() if v}
        print_log(
            f'BoxCopyPaste: {len(rows)} boxes in {self.ann_file}; rare classes (box share < '
            f'{self.rare_thr}): ' + ', '.join(
                f'{self.classes[k]} ({self.box_share[k]:.3f}, {len(v)} boxes)'
                for k, v in self.rare_sources.items()), logger='current')

    def _load_crop(self, src: int) -> Tuple[np.ndarray, Tuple[float, float, float, float]]:
        """Crop (box + context) of source row ``src`` at source resolution, and the box in it."""
        if src in self._cache:
            self._cache.move_to_end(src)
            return self._cache[src]
        img_id, _, x1, y1, x2, y2 = self.sources[src]
        path = self.images[img_id][0]
        buf = fileio.get(path, backend_args=self.backend_args)
        img = cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise ValueError(f'BoxCopyPaste: cannot decode source image {path}')
        h, w = img.shape[:2]
        mx, my = self.context * (x2 - x1), self.context * (y2 - y1)
        cx1, cy1 = max(0, int(math.floor(x1 - mx))), max(0, int(math.floor(y1 - my)))
        cx2, cy2 = min(w, int(math.ceil(x2 + mx))), min(h, int(math.ceil(y2 + my)))
        crop = np.ascontiguousarray(img[cy1:cy2, cx1:cx2])
        entry = (crop, (x1 - cx1, y1 - cy1, x2 - cx1, y2 - cy1))
        self._cache[src] = entry
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return entry

    # ------------------------------------------------------------------ geometry
    def _dest_scale(self, results: dict) -> Tuple[float, float, bool]:
        """Destination px per original px (x, y); flag False when only PNG units are known."""
        img_h, img_w = results['img'].shape[:2]
        if 'orig_width' in results and 'orig_height' in results:
            return img_w / float(results['orig_width']), img_h / float(results['orig_height']), True
        img_id = self._path2img.get(osp.normpath(results.get('img_path', '') or ''))
        if img_id is not None:
            _, _, _, ow, oh = self.images[img_id]
            return img_w / ow, img_h / oh, True
        ori_h, ori_w = results.get('ori_shape', (img_h, img_w))[:2]
        return img_w / ori_w, img_h / ori_h, False

    @staticmethod
    def _ioa_ok(box: np.ndarray, others: np.ndarray, max_ioa: float) -> bool:
        if len(others) == 0:
            return True
        ix = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
        iy = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
        area = np.clip((others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1]), 1e-6, None)
        return bool(np.all(ix * iy / area <= max_ioa))

    # ------------------------------------------------------------------ transform
    def transform(self, results: dict) -> dict:
        """Paste rare lesions into ``results`` with probability ``prob``.

        Args:
            results (dict): Result dict of an mmdet pipeline.

        Returns:
            dict: The updated result dict.
        """
        rng = self._rng if self._rng is not None else np.random.default_rng(
            np.random.randint(0, 2**31 - 1))
        if not self.rare_sources or rng.random() >= self.prob:
            return results
        if 'gt_masks' in results or 'gt_seg_map' in results:
            raise ValueError('BoxCopyPaste pastes boxes only and cannot update gt_masks / '
                             'gt_seg_map; use mmdet CopyPaste for instance masks')
        img = results['img']
        img_h, img_w = img.shape[:2]
        gt = results.get('gt_bboxes')
        boxes_np = (gt.numpy() if isinstance(gt, HorizontalBoxes) else
                    np.asarray(gt, np.float32).reshape(-1, 4)) if gt is not None else np.zeros(
                        (0, 4), np.float32)
        occupied = boxes_np.astype(np.float32).reshape(-1, 4)
        dest_sx, dest_sy, physical = self._dest_scale(results)
        dest_img_id = self._path2img.get(osp.normpath(results.get('img_path', '') or ''))
        out = img.astype(np.float32, copy=True)
        new_boxes, new_labels = [], []
        labels = sorted(self.rare_sources)
        for _ in range(int(rng.integers(1, self.max_num_pasted + 1))):
            label = labels[int(rng.integers(len(labels)))]
            cands = self.rare_sources[label]
            src = cands[int(rng.integers(len(cands)))]
            src_img_id = self.sources[src][0]
            if src_img_id == dest_img_id:
                continue
            _, png_w, png_h, ow, oh = self.images[src_img_id]
            src_sx, src_sy = (png_w / ow, png_h / oh) if physical else (1.0, 1.0)
            jitter = rng.uniform(*self.scale_range)
            fx, fy = dest_sx / src_sx * jitter, dest_sy / src_sy * jitter
            crop, (bx1, by1, bx2, by2) = self._load_crop(src)
            ch, cw = max(1, int(round(crop.shape[0] * fy))), max(1, int(round(crop.shape[1] * fx)))
            if ch > img_h or cw > img_w or min(ch, cw) < 2:
                continue
            box_in_crop = np.array([bx1 * cw / crop.shape[1], by1 * ch / crop.shape[0],
                                    bx2 * cw / crop.shape[1], by2 * ch / crop.shape[0]], np.float32)
            for _ in range(self.max_tries):
                px, py = int(rng.integers(0, img_w - cw + 1)), int(rng.integers(0, img_h - ch + 1))
                box = box_in_crop + np.array([px, py, px, py], np.float32)
                if self._ioa_ok(box, occupied, self.max_ioa):
                    break
            else:
                continue
            interp = cv2.INTER_AREA if fx * fy < 1 else cv2.INTER_LINEAR
            patch = cv2.resize(crop, (cw, ch), interpolation=interp).astype(np.float32)
            patch = self._match_channels(patch, out)
            alpha = feather_mask(ch, cw, box_in_crop, self.min_feather)
            region = out[py:py + ch, px:px + cw]
            a = alpha[..., None] if region.ndim == 3 else alpha
            if self.match_intensity:  # same mean over the context ring (weights 1 - alpha)
                ring = np.broadcast_to(1.0 - a, region.shape)
                denom = float(ring.sum()) or 1.0
                patch = patch + float(((region - patch) * ring).sum()) / denom
            out[py:py + ch, px:px + cw] = a * patch + (1.0 - a) * region
            occupied = np.concatenate([occupied, box[None]], axis=0)
            new_boxes.append(box)
            new_labels.append(label)
        if not new_boxes:
            return results
        if np.issubdtype(img.dtype, np.integer):
            info = np.iinfo(img.dtype)
            out = np.clip(np.round(out), info.min, info.max)
        results['img'] = out.astype(img.dtype)
        self._append_annotations(results, np.stack(new_boxes), np.asarray(new_labels, np.int64))
        return results

    @staticmethod
    def _match_channels(patch: np.ndarray, dest: np.ndarray) -> np.ndarray:
        if dest.ndim == 3 and patch.ndim == 2:
            return np.repeat(patch[..., None], dest.shape[2], axis=2)
        if dest.ndim == 2 and patch.ndim == 3:
            return patch.mean(axis=2)
        if dest.ndim == 3 and patch.shape[2] != dest.shape[2]:
            return np.repeat(patch.mean(axis=2, keepdims=True), dest.shape[2], axis=2)
        return patch

    @staticmethod
    def _append_annotations(results: dict, boxes: np.ndarray, labels: np.ndarray) -> None:
        gt = results.get('gt_bboxes')
        if isinstance(gt, HorizontalBoxes):
            results['gt_bboxes'] = HorizontalBoxes.cat(
                [gt, HorizontalBoxes(boxes, dtype=gt.tensor.dtype, device=gt.device)])
        elif gt is None:
            results['gt_bboxes'] = HorizontalBoxes(boxes)
        else:
            results['gt_bboxes'] = np.concatenate(
                [np.asarray(gt, np.float32).reshape(-1, 4), boxes], axis=0)
        old_labels = results.get('gt_bboxes_labels', np.zeros((0, ), np.int64))
        results['gt_bboxes_labels'] = np.concatenate([old_labels, labels]).astype(np.int64)
        old_flags = results.get('gt_ignore_flags', np.zeros((0, ), bool))
        results['gt_ignore_flags'] = np.concatenate(
            [old_flags, np.zeros(len(labels), bool)]).astype(bool)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(ann_file={self.ann_file!r}, prob={self.prob}, '
                f'rare={[self.classes[k] for k in self.rare_sources]}, '
                f'max_num_pasted={self.max_num_pasted}, max_ioa={self.max_ioa}, '
                f'context={self.context}, match_intensity={self.match_intensity}, '
                f'scale_range={self.scale_range}, seed={self.seed})')
