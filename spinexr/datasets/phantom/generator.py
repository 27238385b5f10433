"""Write a synthetic VinDr-SpineXR stand-in in the release layout.

Layout (identical to the real release)::

    OUT/annotations/train.csv   OUT/annotations/test.csv
    OUT/train_images/<image_id>.dicom   OUT/test_images/<image_id>.dicom

Determinism: everything is drawn from ``numpy`` generators seeded by
``(seed, split, index, stream)``. The plan (ids, views, sizes, findings) is drawn sequentially in
the main process; each image is then rendered from its own seeds, so the output is identical for
any number of workers.
"""
import csv
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from spinexr.datasets.metainfo import CLASSES, CSV_COLUMNS, NO_FINDING
from . import statistics as st
from .anatomy import build_geometry, render_bone, sample_spine
from .imaging import (add_marker, bone_texture, expose, render_soft_tissue, sample_exposure,
                      to_monochrome1, window_tags)
from .lesions import apply_geometric, draw_lesions, plan_sites

SPLITS = {'train': 0, 'test': 1}
_STREAM_ANATOMY, _STREAM_LESION, _STREAM_IMAGING, _STREAM_SOFT = range(4)


@dataclass
class ImagePlan:
    """Everything that decides one phantom image before it is rendered."""

    split: str
    index: int
    study_id: str
    series_id: str
    image_id: str
    rad_id: str
    view: str
    height: int
    width: int
    monochrome1: bool
    findings: Dict[str, int]
    seed: Tuple[int, ...] = ()


@dataclass
class PhantomImage:
    """A rendered image: stored values, DICOM display tags and its boxes."""

    pixels: np.ndarray  # uint16 (H, W), stored values (already inverted for MONOCHROME1)
    photometric: str
    window: Tuple[float, float]
    boxes: List[Tuple[str, Tuple[float, float, float, float]]] = field(default_factory=list)


def render_phantom_image(height: int, width: int, view: str, findings: Dict[str, int],
                         seed: Sequence[int], monochrome1: bool = False) -> PhantomImage:
    """Render one phantom radiograph.

    The anatomy, lesion, soft-tissue and imaging draws use separate random streams, so the same
    ``seed`` with other ``findings`` gives the same anatomy and noise (lesion signatures aside).

    Args:
        height (int): image rows.
        width (int): image columns.
        view (str): 'lateral' or 'ap'.
        findings (dict): {class name: number of boxes}; {} for a normal image.
        seed (Sequence[int]): seed key of the image.
        monochrome1 (bool): store inverted values (and window centre) as MONOCHROME1.

    Returns:
        PhantomImage: 12-bit stored values, photometric interpretation, window, boxes.
    """
    key = [int(s) for s in seed]
    rng_anat = np.random.default_rng(key + [_STREAM_ANATOMY])
    rng_les = np.random.default_rng(key + [_STREAM_LESION])
    rng_img = np.random.default_rng(key + [_STREAM_IMAGING])
    rng_soft = np.random.default_rng(key + [_STREAM_SOFT])
    spec = sample_spine(rng_anat, height, width, view)
    sites = plan_sites(build_geometry(spec), findings, rng_les) if findings else []
    apply_geometric(spec, sites, rng_les)
    geom = build_geometry(spec)
    bone, ref = render_bone(geom)
    metal = np.zeros_like(bone)
    boxes = draw_lesions(bone, metal, geom, sites, rng_les)
    bone *= bone_texture(rng_img, bone.shape, ref['body_h'])
    soft = render_soft_tissue(geom, rng_soft)
    exposure = sample_exposure(rng_img, height)
    if rng_img.random() < 0.6:
        add_marker(metal, rng_img)
    pixels = expose(soft, bone, metal, exposure, rng_img)
    window = window_tags(exposure)
    photometric = 'MONOCHROME2'
    if monochrome1:
        pixels, window = to_monochrome1(pixels, window)
        photometric = 'MONOCHROME1'
    return PhantomImage(pixels, photometric, window, boxes)


def _hex_id(rng: np.random.Generator) -> str:
    return rng.bytes(16).hex()


def plan_split(split: str, num_images: int, seed: int,
               size_scale: float = 1.0) -> List[ImagePlan]:
    """Draw ids, studies (1-2 views), sizes, photometric and findings of a split's images."""
    code = SPLITS[split]
    rng = np.random.default_rng([int(seed), code, 1_000_003])
    plans: List[ImagePlan] = []
    normal_share = st.normal_share(split)
    while len(plans) < num_images:
        study_id = _hex_id(rng)
        two = rng.random() < st.TWO_VIEW_SHARE
        views = ['lateral', 'ap'] if two else [st.sample_view(rng)]
        rad_id = f'rad{int(rng.integers(1, 4))}'
        abnormal = bool(rng.random() >= normal_share)
        for view in views[:num_images - len(plans)]:
            if view == 'ap':  # the second view mostly shares the study's status
                abnormal = abnormal if rng.random() < 0.85 else bool(rng.random() >= normal_share)
            height, width = st.sample_image_size(rng, size_scale)
            index = len(plans)
            plans.append(ImagePlan(
                split=split, index=index, study_id=study_id, series_id=_hex_id(rng),
                image_id=_hex_id(rng), rad_id=rad_id, view=view, height=height, width=width,
                monochrome1=bool(rng.random() < st.MONOCHROME1_SHARE),
                findings=st.sample_findings(rng, abnormal), seed=(int(seed), code, index)))
    return plans


def _fmt(x: float) -> str:
    return f'{x:.6f}'


def csv_rows(plan: ImagePlan, boxes) -> List[List[str]]:
    """CSV rows of one image: one per box, or one 'No finding' row with empty box columns."""
    head = [plan.study_id, plan.series_id, plan.image_id, plan.rad_id]
    if not boxes:
        return [head + [NO_FINDING, '', '', '', '']]
    return [head + [cls] + [_fmt(v) for v in box] for cls, box in boxes]


def _make_one(plan: ImagePlan, image_dir: str) -> List[List[str]]:
    """Render and write one image (runs in a worker); returns its CSV rows."""
    from spinexr.io.dicom_writer import write_dicom
    img = render_phantom_image(plan.height, plan.width, plan.view, plan.findings, plan.seed,
                               plan.monochrome1)
    write_dicom(os.path.join(image_dir, f'{plan.image_id}.dicom'), img.pixels, bits_stored=12,
                photometric=img.photometric, window=img.window,
                sop_instance_uid=plan.image_id, study_instance_uid=plan.study_id,
                series_instance_uid=plan.series_id,
                view_position='LL' if plan.view == 'lateral' else 'AP')
    return csv_rows(plan, img.boxes)


def _results(plans: List[ImagePlan], image_dir: str, workers: int) -> Iterator[List[List[str]]]:
    if workers <= 1:
        for p in plans:
            yield _make_one(p, image_dir)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        # bounded look-ahead keeps memory flat for thousands of real-size images
        pending, it = [], iter(plans)
        for p in it:
            pending.append(pool.submit(_make_one, p, image_dir))
            if len(pending) >= 4 * workers:
                yield pending.pop(0).result()
        for fut in pending:
            yield fut.result()


def _count(counts: Dict[str, int], rows: List[List[str]]) -> None:
    counts['images'] += 1
    for row in rows:
        if row[4] == NO_FINDING:
            counts['normal'] += 1
        else:
            counts[row[4]] += 1


def generate_phantom(out: str, num_train: int, num_test: int, seed: int = 0, *,
                     size_scale: float = 1.0, workers: int = 1, overwrite: bool = False,
                     progress: Optional[Callable] = None) -> Dict[str, Dict[str, int]]:
    """Write a phantom release to ``out`` (see the module docstring for the layout).

    Args:
        out (str): output root.
        num_train (int): number of train images.
        num_test (int): number of test images.
        seed (int): seed; the same seed gives byte-identical CSVs and pixel-identical images.
        size_scale (float): scale of the image size (1.0: real size around 2874 x 1243).
        workers (int): processes; the output does not depend on it.
        overwrite (bool): replace existing CSVs. Nothing is deleted: DICOMs of the new ids are
            written, other files in the image folders stay (the CSVs list what belongs).
        progress (callable, optional): wraps an iterable, e.g. ``functools.partial(tqdm, ...)``;
            called as ``progress(iterable, total=n, desc=split)``.

    Returns:
        dict: per split: ``images``, ``normal`` and box counts per class.
    """
    root = Path(out)
    for split in SPLITS:
        csv_path = root / 'annotations' / f'{split}.csv'
        if csv_path.exists() and not overwrite:
            raise FileExistsError(f'{csv_path} already exists; pass overwrite=True (--overwrite)')
    (root / 'annotations').mkdir(parents=True, exist_ok=True)
    summary: Dict[str, Dict[str, int]] = {}
    for split, num in (('train', num_train), ('test', num_test)):
        csv_path = root / 'annotations' / f'{split}.csv'
        image_dir = root / f'{split}_images'
        image_dir.mkdir(parents=True, exist_ok=True)
        plans = plan_split(split, num, seed, size_scale)
        counts = dict(images=0, normal=0, **{c: 0 for c in CLASSES})
        tmp = csv_path.with_name(f'.{csv_path.name}.tmp-{os.getpid()}')
        try:
            with open(tmp, 'w', newline='') as f:
                writer = csv.writer(f, lineterminator='\n')
                writer.writerow(CSV_COLUMNS)
                results = _results(plans, str(image_dir), workers)
                if progress is not None:
                    results = progress(results, total=len(plans), desc=split)
                for rows in results:
                    writer.writerows(rows)
                    _count(counts, rows)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, csv_path)
        summary[split] = counts
    return summary
