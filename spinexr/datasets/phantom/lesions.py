"""Lesion signatures of the phantom, one function per class, each returning its box.

Lesions come in two kinds. *Geometric* ones change the column before it is stacked
(:func:`apply_geometric`): disc space narrowing (a thinner disc), spondylolisthesis (a vertebra and
everything above it shifted against the level below) and vertebral collapse (a flattened, wedged,
denser body). *Overlays* add density after the anatomy is drawn: osteophytes (spurs at body
corners), surgical implants (bright pedicle screws, rods and cages), foraminal stenosis (bone
encroaching on the neural foramen / an enlarged facet) and other lesions (a lytic or sclerotic focus
in a body). Every ``draw_*`` function draws what remains of the signature and returns the box
``(xmin, ymin, xmax, ymax)`` in image pixels (floats).
"""
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Tuple

import numpy as np

from .anatomy import SpineGeometry, SpineSpec, Vertebra
from .drawing import add_blob, add_ellipse, add_polygon, add_polyline, points_box

Box = Tuple[float, float, float, float]
GEOMETRIC = ('Disc space narrowing', 'Spondylolysthesis', 'Vertebral collapse')
METAL = 2.4  # density of metal: saturates the detector


@dataclass
class LesionSite:
    """Where one lesion sits: a level (vertebra or the disc below it) and optional details."""

    cls: str
    level: int
    anterior: bool = True  # corner / side: anterior (lateral) or image-right (AP)
    superior: bool = True
    span: int = 1
    params: Dict[str, float] = field(default_factory=dict)


def _lower(geom: SpineGeometry, level: int) -> Vertebra:
    return geom.vertebrae[level - 1] if level > 0 else geom.sacrum


def _choose(rng: np.random.Generator, candidates: list, k: int, weights=None) -> list:
    if not candidates or k <= 0:
        return []
    p = None if weights is None else np.asarray(weights, float) / np.sum(weights)
    idx = rng.choice(len(candidates), size=min(k, len(candidates)), replace=False, p=p)
    return [candidates[i] for i in sorted(idx)]


def plan_sites(geom: SpineGeometry, findings: Dict[str, int],
               rng: np.random.Generator) -> List[LesionSite]:
    """Choose anatomical sites for the requested ``findings`` ({class: count}) on levels that lie
    fully inside the image. Counts above the number of free sites are reduced."""
    spec = geom.spec
    ref_h = float(np.mean(spec.body_h))
    lateral = spec.view == 'lateral'
    levels = [v.index for v in geom.vertebrae if geom.inside(v, 0.35 * ref_h)]
    if lateral:  # posterior elements (foramina, screws) must be inside too
        levels = [i for i in levels if _inside(geom, geom.vertebrae[i].to_xy(
            -1.3 * geom.vertebrae[i].width / 2, 0.0)[0], 0.2 * ref_h)]
    sacrum_in = _inside(geom, geom.sacrum.center, 0.5 * ref_h)
    discs = [i for i in levels if (i - 1 in levels) or (i == 0 and sacrum_in)]
    sites: List[LesionSite] = []
    for cls, k in findings.items():
        if cls == 'Osteophytes':
            cand = [(i, ant, sup) for i in levels for ant in (True, False) for sup in (True, False)]
            w = [4.0 if (ant or not lateral) else 1.0 for _, ant, _ in cand]
            sites += [LesionSite(cls, i, ant, sup) for i, ant, sup in _choose(rng, cand, k, w)]
        elif cls in ('Disc space narrowing', 'Spondylolysthesis'):
            sites += [LesionSite(cls, i, anterior=bool(rng.random() < 0.5))
                      for i in _choose(rng, discs, k)]
        elif cls in ('Vertebral collapse', 'Other lesions'):
            sites += [LesionSite(cls, i, anterior=bool(rng.random() < 0.5))
                      for i in _choose(rng, levels, k)]
        elif cls == 'Foraminal stenosis':
            cand = [(i, s) for i in discs for s in ((True,) if lateral else (True, False))]
            sites += [LesionSite(cls, i, s) for i, s in _choose(rng, cand, k)]
        elif cls == 'Surgical implant':
            span = int(rng.choice([2, 3, 4], p=[0.35, 0.4, 0.25]))
            starts = [i for i in levels if all(j in levels for j in range(i, i + span))]
            if not starts:
                span = 1
                starts = levels
            for i in _choose(rng, starts, 1):
                sites.append(LesionSite(cls, i, span=span, params=dict(kind=0)))
                cages = [j for j in range(i + 1, i + span)]
                for j in _choose(rng, cages, k - 1):
                    sites.append(LesionSite(cls, j, params=dict(kind=1)))
        else:
            raise ValueError(f'unknown lesion class {cls!r}')
    return sites


def _inside(geom: SpineGeometry, pt: np.ndarray, margin: float) -> bool:
    return bool(margin <= pt[0] <= geom.spec.width - margin
                and margin <= pt[1] <= geom.spec.height - margin)


def apply_geometric(spec: SpineSpec, sites: List[LesionSite], rng: np.random.Generator) -> None:
    """Edit ``spec`` in place for the geometric lesions among ``sites``."""
    for s in sites:
        i = s.level
        if s.cls == 'Disc space narrowing':
            spec.disc_h[i] *= rng.uniform(0.2, 0.5)
        elif s.cls == 'Spondylolysthesis':
            sign = 1.0 if spec.view == 'lateral' or s.anterior else -1.0
            spec.slip[i] += sign * rng.uniform(0.15, 0.3) * spec.body_w[i]
        elif s.cls == 'Vertebral collapse':
            spec.body_h[i] *= rng.uniform(0.55, 0.78)
            ratio = rng.uniform(0.55, 0.85)
            spec.wedge[i] = ratio if (spec.view == 'lateral' or s.anterior) else 1.0 / ratio
            spec.density[i] *= 1.3


def draw_osteophyte(bone: np.ndarray, metal: np.ndarray, geom: SpineGeometry, site: LesionSite,
                    rng: np.random.Generator) -> Box:
    """A beak-like spur growing out of a body corner towards the neighbouring disc."""
    v = geom.vertebrae[site.level]
    h = v.height
    sa = 1.0 if site.anterior else -1.0
    sv = -1.0 if site.superior else 1.0
    a_c = sa * v.width / 2 * 0.98
    v_c = sv * (v.h_ant if site.anterior else v.h_post) / 2 * 0.97
    length = rng.uniform(0.12, 0.26) * h
    tip = rng.uniform(0.03, 0.15) * h
    p = np.array([0.0, 0.45, 1.0, 0.8, 0.25, -0.05]) * length
    q = np.array([-0.17 * h, -0.06 * h, tip, tip + 0.025 * h, 0.05 * h, 0.0])
    pts = v.to_xy(a_c + sa * p, v_c + sv * q)
    add_polygon(bone, pts, 0.55, 0.85, 0.03 * h)
    inner = v.to_xy(a_c - sa * 0.08 * h, v_c)
    return points_box(np.vstack([pts, inner]), 0.04 * h)


def draw_disc_space_narrowing(bone: np.ndarray, metal: np.ndarray, geom: SpineGeometry,
                              site: LesionSite, rng: np.random.Generator) -> Box:
    """Sclerotic endplates around the (already narrowed) disc; box over the disc space."""
    upper, lower = geom.vertebrae[site.level], _lower(geom, site.level)
    h, w = upper.height, upper.width
    a = np.linspace(-0.42, 0.42, 12) * w
    add_polyline(bone, upper.to_xy(a, np.full_like(a, 0.44 * h)), 0.22, 0.08 * h)
    low_v = 0.04 * h if site.level == 0 else -lower.height / 2 + 0.06 * h
    add_polyline(bone, lower.to_xy(a, np.full_like(a, low_v)), 0.22, 0.08 * h)
    center, _ = geom.disc_center(site.level)
    top = upper.to_xy([-0.38 * w, 0.38 * w], [0.36 * h, 0.36 * h])
    bottom = lower.to_xy([-0.38 * w, 0.38 * w], [low_v + 0.08 * h] * 2)
    return points_box(np.vstack([top, bottom, center[None]]), 0.02 * h)


def draw_spondylolisthesis(bone: np.ndarray, metal: np.ndarray, geom: SpineGeometry,
                           site: LesionSite, rng: np.random.Generator) -> Box:
    """The slip itself is geometric; the box spans the step between the two bodies."""
    upper, lower = geom.vertebrae[site.level], _lower(geom, site.level)
    h = upper.height
    up = upper.to_xy([-upper.width / 2, upper.width / 2] * 2, [0.1 * h] * 2 + [h / 2] * 2)
    if site.level == 0:
        low = lower.to_xy([-lower.width / 2, lower.width / 2] * 2, [0.0] * 2 + [0.3 * h] * 2)
    else:
        lh = lower.height
        low = lower.to_xy([-lower.width / 2, lower.width / 2] * 2, [-lh / 2] * 2 + [-0.2 * lh] * 2)
    return points_box(np.vstack([up, low]), 0.04 * h)


def draw_vertebral_collapse(bone: np.ndarray, metal: np.ndarray, geom: SpineGeometry,
                            site: LesionSite, rng: np.random.Generator) -> Box:
    """Flattened, wedged body (geometric) with a sclerotic band of compressed trabeculae."""
    v = geom.vertebrae[site.level]
    h = v.height
    a = np.linspace(-0.45, 0.45, 12) * v.width
    add_polyline(bone, v.to_xy(a, np.full_like(a, rng.uniform(-0.2, 0.2) * h)), 0.18, 0.25 * h)
    x0, y0, x1, y1 = points_box(v.outline(32))
    mx, my = 0.1 * v.width, 0.16 * h
    return x0 - mx, y0 - my, x1 + mx, y1 + my


def _screw(metal: np.ndarray, v: Vertebra, a0: float, a1: float, vv: float, thick: float) -> list:
    """A pedicle screw from ``a0`` (head) to ``a1`` (tip) at height ``vv``; returns its points."""
    t = np.linspace(0, 1, 8)
    shaft = v.to_xy(a0 + (a1 - a0) * t, vv + 0 * t)
    add_polyline(metal, shaft, METAL, thick)
    head = v.to_xy([a0 - 0.3 * thick * np.sign(a1 - a0)] * 2, [vv - 1.1 * thick, vv + 1.1 * thick])
    add_polyline(metal, head, METAL, 1.6 * thick)
    return [shaft, head]


def draw_surgical_implant(bone: np.ndarray, metal: np.ndarray, geom: SpineGeometry,
                          site: LesionSite, rng: np.random.Generator) -> Box:
    """Pedicle screws joined by rods over ``span`` levels (kind 0) or an interbody cage (kind 1)."""
    lateral = geom.spec.view == 'lateral'
    if site.params.get('kind', 0) == 1:  # cage in the disc below this level
        upper = geom.vertebrae[site.level]
        h, w = upper.height, upper.width
        center, ang = geom.disc_center(site.level)
        disc = geom.spec.disc_h[site.level]
        cage = Vertebra(-2, center, ang, 0.55 * w, 0.8 * disc, 0.8 * disc, upper.facing, 1.0)
        pts = cage.outline(24)
        add_polygon(metal, pts, 0.35, METAL * 0.7, 0.04 * h)
        return points_box(pts, 0.06 * h)
    levels = [geom.vertebrae[i] for i in range(site.level, site.level + site.span)]
    parts, heads = [], {1: [], -1: []}
    for v in levels:
        h, w = v.height, v.width
        thick = 0.08 * h
        if lateral:
            a0, a1 = -0.5 * w - 0.2 * w, rng.uniform(0.15, 0.3) * w
            parts += _screw(metal, v, a0, a1, -0.12 * h, thick)
            heads[1].append(v.to_xy(a0 - 0.05 * w, -0.12 * h)[0])
        else:
            for side in (1, -1):
                a0, a1 = side * 0.4 * w, side * 0.12 * w
                parts += _screw(metal, v, a0, a1, -0.15 * h, 1.4 * thick)
                heads[side].append(v.to_xy(a0, -0.15 * h)[0])
    for side, pts in heads.items():
        if len(pts) < 2:
            continue
        pts = np.array(pts)
        ext = (pts[-1] - pts[0]) / np.linalg.norm(pts[-1] - pts[0]) * 0.15 * levels[0].height
        rod = np.vstack([pts[0] - ext, pts, pts[-1] + ext])
        add_polyline(metal, rod, METAL, 0.07 * levels[0].height)
        parts.append(rod)
    return points_box(np.vstack(parts), 0.08 * levels[0].height)


def draw_foraminal_stenosis(bone: np.ndarray, metal: np.ndarray, geom: SpineGeometry,
                            site: LesionSite, rng: np.random.Generator) -> Box:
    """Bone bulging into the neural foramen (lateral) or an enlarged facet (AP); subtle."""
    v = geom.vertebrae[site.level]
    h, w = v.height, v.width
    lower = _lower(geom, site.level)
    disc_v = h / 2 + 0.5 * np.linalg.norm(v.to_xy(0, h / 2)[0] - lower.to_xy(
        0, -lower.height / 2 if site.level > 0 else 0.0)[0])
    if geom.spec.view == 'lateral':
        c_a, c_v = -0.5 * w - 0.11 * w, disc_v - 0.12 * h
        bulge = rng.uniform(0.12, 0.18) * w  # posterior spur of the body into the foramen
        spur = v.to_xy(np.array([-0.49, -0.49, -0.5, -0.5]) * w - [0, bulge, 0.7 * bulge, 0],
                       np.array([0.15, 0.36, 0.5, 0.47]) * h)
        add_polygon(bone, spur, 0.4, 0.6, 0.025 * h)
        add_ellipse(bone, v.to_xy(c_a - 0.13 * w, c_v + 0.05 * h)[0], (0.08 * w, 0.17 * h), 0.3,
                    angle=v.angle, rim_value=0.45, rim_thickness=0.02 * h)  # facet overgrowth
        half = (0.13 * w, 0.22 * h)
    else:
        side = 1.0 if site.anterior else -1.0
        c_a, c_v = side * 0.27 * w, disc_v
        add_ellipse(bone, v.to_xy(c_a, c_v)[0], (0.07 * w, 0.17 * h), 0.3, angle=v.angle,
                    rim_value=0.5, rim_thickness=0.025 * h)
        half = (0.1 * w, 0.22 * h)
    corners = v.to_xy([c_a - half[0], c_a + half[0]] * 2, [c_v - half[1]] * 2 + [c_v + half[1]] * 2)
    return points_box(corners)


def draw_other_lesion(bone: np.ndarray, metal: np.ndarray, geom: SpineGeometry,
                      site: LesionSite, rng: np.random.Generator) -> Box:
    """A lytic (darker) or sclerotic (brighter) irregular focus inside a vertebral body."""
    v = geom.vertebrae[site.level]
    h, w = v.height, v.width
    center = v.to_xy(rng.uniform(-0.2, 0.2) * w, rng.uniform(-0.15, 0.15) * h)[0]
    radius = rng.uniform(0.28, 0.4) * h
    value = -0.3 * v.density if rng.random() < 0.5 else 0.4
    pts = add_blob(bone, center, radius, value, rng)
    if value > 0:
        add_blob(bone, center, radius * 0.5, 0.2, rng)
    return points_box(pts, 0.1 * h)


#: The draw function of every class.
DRAWERS: Dict[str, Callable[..., Box]] = {
    'Osteophytes': draw_osteophyte,
    'Surgical implant': draw_surgical_implant,
    'Spondylolysthesis': draw_spondylolisthesis,
    'Foraminal stenosis': draw_foraminal_stenosis,
    'Disc space narrowing': draw_disc_space_narrowing,
    'Vertebral collapse': draw_vertebral_collapse,
    'Other lesions': draw_other_lesion,
}


def draw_lesions(bone: np.ndarray, metal: np.ndarray, geom: SpineGeometry,
                 sites: List[LesionSite], rng: np.random.Generator) -> List[Tuple[str, Box]]:
    """Draw every site's signature; returns ``[(class, box)]`` with boxes clipped to the image."""
    out = []
    w, h = geom.spec.width, geom.spec.height
    for site in sites:
        x0, y0, x1, y1 = DRAWERS[site.cls](bone, metal, geom, site, rng)
        box = (max(x0, 0.0), max(y0, 0.0), min(x1, float(w)), min(y1, float(h)))
        if box[2] - box[0] >= 1.0 and box[3] - box[1] >= 1.0:
            out.append((site.cls, box))
    return out
