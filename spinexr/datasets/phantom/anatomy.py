"""Anatomy of the phantom: a curved column of vertebrae with discs, posterior elements, sacrum,
pelvis and rib hints, drawn as additive bone-density maps in a lateral or an AP (frontal) view.

Geometry is built in two steps so that lesions can change it: :func:`sample_spine` draws a
:class:`SpineSpec` (sizes per level, curvature, pose), lesions of the *geometric* kind (disc space
narrowing, spondylolisthesis, vertebral collapse) edit the spec, and :func:`build_geometry` stacks
the column bottom-up from the sacrum. Levels are indexed bottom-up: level 0 is the vertebra above
the sacrum (L5), disc ``i`` lies below vertebra ``i``.

Local frame of a vertebra: ``a`` across the spine (positive = anterior in the lateral view,
image right in the AP view), ``v`` along the spine, positive downwards; both in pixels.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from .drawing import add_ellipse, add_polygon, add_polyline

VIEWS = ('lateral', 'ap')


@dataclass
class SpineSpec:
    """Everything that determines the column's shape; lesions of the geometric kind edit it."""

    view: str
    height: int
    width: int
    facing: int  # +1: anterior to the image right (lateral view); always +1 in the AP view
    x0: float  # centerline x at the sacral endplate
    bottom_y: float  # y of the top of the sacrum (centre of the S1 endplate)
    curve_amp: float  # lordosis (lateral) / scoliosis (AP) amplitude in px
    curve_len: float  # length scale of the curvature in px
    tilt: float  # global tilt in rad
    body_h: List[float] = field(default_factory=list)  # per level: mean body height
    body_w: List[float] = field(default_factory=list)  # per level: body width (depth if lateral)
    disc_h: List[float] = field(default_factory=list)  # per level: disc below the body
    wedge: List[float] = field(default_factory=list)  # anterior / posterior height ratio
    slip: List[float] = field(default_factory=list)  # offset against the level below, px
    density: List[float] = field(default_factory=list)  # cancellous density multiplier

    @property
    def num_levels(self) -> int:
        return len(self.body_h)


@dataclass
class Vertebra:
    """A placed vertebral body: centre, orientation, size."""

    index: int
    center: np.ndarray
    angle: float
    width: float
    h_post: float
    h_ant: float
    facing: int
    density: float
    ap: bool = False

    @property
    def height(self) -> float:
        return 0.5 * (self.h_post + self.h_ant)

    def to_xy(self, a, v) -> np.ndarray:
        """Local (a, v) -> image (x, y); accepts scalars or arrays, returns (N, 2)."""
        a = np.atleast_1d(np.asarray(a, np.float64)) * self.facing
        v = np.atleast_1d(np.asarray(v, np.float64))
        ca, sa = np.cos(self.angle), np.sin(self.angle)
        x = self.center[0] + a * ca - v * sa
        y = self.center[1] + a * sa + v * ca
        return np.stack([x, y], axis=1)

    def outline(self, n: int = 64) -> np.ndarray:
        """Body outline in image coordinates (rounded box, concave endplates, waist)."""
        a, v = body_outline(self.width, self.h_post, self.h_ant, n=n,
                            both_sides=self.ap)
        return self.to_xy(a, v)

    def corner(self, anterior: bool, superior: bool) -> np.ndarray:
        """Image position of a body corner (anterior/posterior, superior/inferior)."""
        a = self.width / 2 * (1 if anterior else -1)
        h = self.h_ant if anterior else self.h_post
        return self.to_xy(a * 0.97, (-h if superior else h) / 2 * 0.97)[0]


@dataclass
class SpineGeometry:
    """The column after stacking: vertebrae bottom-up and the sacral pose."""

    spec: SpineSpec
    vertebrae: List[Vertebra]
    sacrum: Vertebra  # a virtual level whose superior endplate is the S1 endplate

    def inside(self, vert: Vertebra, margin: float) -> bool:
        """Whether the whole body plus ``margin`` lies inside the image."""
        pts = vert.outline(16)
        return bool(pts[:, 0].min() >= margin and pts[:, 1].min() >= margin
                    and pts[:, 0].max() <= self.spec.width - margin
                    and pts[:, 1].max() <= self.spec.height - margin)

    def disc_center(self, level: int) -> Tuple[np.ndarray, float]:
        """Centre and angle of disc ``level`` (below vertebra ``level``)."""
        upper = self.vertebrae[level]
        lower = self.vertebrae[level - 1] if level > 0 else self.sacrum
        top = upper.to_xy(0.0, upper.height / 2)[0]
        bottom = lower.to_xy(0.0, -lower.height / 2)[0] if level > 0 else lower.center
        return 0.5 * (top + bottom), 0.5 * (upper.angle + lower.angle)


def body_outline(width: float, h_post: float, h_ant: float, n: int = 64, exponent: float = 7.0,
                 concavity: float = 0.04, waist: float = 0.05,
                 both_sides: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Local (a, v) outline of a vertebral body: a superellipse, wedged and with concave sides."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    an = np.sign(c) * np.abs(c) ** (2.0 / exponent)
    vn = np.sign(s) * np.abs(s) ** (2.0 / exponent)
    half_h = 0.5 * (h_post + (h_ant - h_post) * (an + 1.0) / 2.0)
    v = vn * half_h * (1.0 - concavity * (1.0 - an ** 2))
    pinch = waist * (1.0 - vn ** 2)
    a = an * width / 2 * np.where((an > 0) | both_sides, 1.0 - pinch, 1.0)
    return a, v


def sample_spine(rng: np.random.Generator, height: int, width: int, view: str) -> SpineSpec:
    """Draw a normal spine that fills an image of ``height`` x ``width`` pixels."""
    if view not in VIEWS:
        raise ValueError(f'view must be one of {VIEWS}, got {view!r}')
    pitch = height * rng.uniform(0.095, 0.13)
    body_h = 0.76 * pitch
    depth = min(body_h * rng.uniform(1.2, 1.4), 0.42 * width)
    if view == 'ap':
        depth = min(body_h * rng.uniform(1.5, 1.75), 0.42 * width)
        body_h = min(body_h, depth / 1.4)
    lateral = view == 'lateral'
    facing = int(rng.choice([-1, 1])) if lateral else 1
    x0 = width * (0.5 + (rng.uniform(0.0, 0.08) * facing if lateral else rng.uniform(-0.05, 0.05)))
    spec = SpineSpec(
        view=view, height=height, width=width, facing=facing, x0=x0,
        bottom_y=height * rng.uniform(0.78, 1.08),
        curve_amp=(facing * pitch * rng.uniform(0.2, 0.6) if lateral
                   else pitch * rng.uniform(-0.25, 0.25)),
        curve_len=height * rng.uniform(0.6, 0.9), tilt=rng.normal(0.0, 0.02))
    num = int(np.ceil(spec.bottom_y / pitch)) + 2
    for i in range(num):
        taper = 1.0 - 0.025 * i  # upper levels are a little smaller
        spec.body_h.append(body_h * taper * rng.uniform(0.95, 1.05))
        spec.body_w.append(depth * taper * rng.uniform(0.96, 1.04))
        spec.disc_h.append(0.31 * body_h * taper * rng.uniform(0.85, 1.15))
        spec.wedge.append(rng.uniform(0.97, 1.05))
        spec.slip.append(rng.normal(0.0, 0.01 * depth))
        spec.density.append(rng.uniform(0.9, 1.1))
    return spec


def _centerline(spec: SpineSpec, y: float) -> Tuple[float, float]:
    """Centerline x and tangent angle at image height ``y``."""
    s = (spec.bottom_y - y) / spec.curve_len
    x = spec.x0 + spec.curve_amp * np.sin(np.pi * s) - spec.tilt * (spec.bottom_y - y)
    dxdy = -spec.curve_amp * np.pi / spec.curve_len * np.cos(np.pi * s) + spec.tilt
    return x, float(-np.arctan(dxdy))


def build_geometry(spec: SpineSpec) -> SpineGeometry:
    """Stack the column bottom-up from the sacrum along the curved centerline."""
    x, ang = _centerline(spec, spec.bottom_y)
    point = np.array([x, spec.bottom_y])
    w0, h0 = spec.body_w[0], spec.body_h[0]
    ap = spec.view == 'ap'
    sacrum = Vertebra(-1, point.copy(), ang + spec.facing * (0.0 if ap else 0.45), w0 * 1.05, h0,
                      h0, spec.facing, 1.0, ap)
    verts: List[Vertebra] = []
    offset = 0.0
    for i in range(spec.num_levels):
        h, w, d = spec.body_h[i], spec.body_w[i], spec.disc_h[i]
        h_post = 2 * h / (1 + spec.wedge[i])
        h_ant = h_post * spec.wedge[i]
        up = np.array([np.sin(ang), -np.cos(ang)])
        offset += spec.slip[i]
        center = point + up * (d + h / 2)
        _, ang = _centerline(spec, center[1])
        across = np.array([np.cos(ang), np.sin(ang)]) * spec.facing
        verts.append(Vertebra(i, center + across * offset, ang, w, h_post, h_ant, spec.facing,
                              spec.density[i], ap))
        up = np.array([np.sin(ang), -np.cos(ang)])
        point = center + up * h / 2
    return SpineGeometry(spec, verts, sacrum)


def _draw_lateral_elements(bone: np.ndarray, v: Vertebra) -> None:
    """Pedicle, lamina with spinous process and articular processes, posterior of the body."""
    w, h = v.width, v.height
    back = -w / 2
    ped = v.to_xy([back + 0.04 * w, back - 0.34 * w, back - 0.34 * w, back + 0.04 * w],
                  [-0.42 * h, -0.40 * h, 0.02 * h, 0.05 * h])
    add_polygon(bone, ped, 0.35, 0.55, 0.02 * h)
    spinous = v.to_xy([back - 0.30 * w, back - 0.30 * w, back - 0.55 * w, back - 1.05 * w,
                       back - 1.10 * w, back - 0.60 * w],
                      [-0.42 * h, 0.30 * h, 0.50 * h, 0.75 * h, 0.45 * h, -0.25 * h])
    add_polygon(bone, spinous, 0.40, 0.65, 0.03 * h)
    add_ellipse(bone, v.to_xy(back - 0.36 * w, -0.62 * h)[0], (0.09 * w, 0.2 * h), 0.35,
                angle=v.angle, rim_value=0.55, rim_thickness=0.02 * h)
    add_ellipse(bone, v.to_xy(back - 0.42 * w, 0.62 * h)[0], (0.09 * w, 0.2 * h), 0.35,
                angle=v.angle, rim_value=0.55, rim_thickness=0.02 * h)


def _draw_ap_elements(bone: np.ndarray, v: Vertebra, lumbar: bool) -> None:
    """Pedicle rings, spinous process, laminae, transverse processes and facets (AP view)."""
    w, h = v.width, v.height
    for side in (-1, 1):
        add_ellipse(bone, v.to_xy(side * 0.31 * w, -0.18 * h)[0], (0.085 * w, 0.17 * h), 0.15,
                    angle=v.angle, rim_value=0.6, rim_thickness=0.035 * h)
        span = 0.95 if lumbar else 0.7
        tp = v.to_xy(side * np.array([0.42, span, span + 0.04, 0.42]) * w,
                     np.array([-0.22, -0.14, 0.0, 0.06]) * h)
        add_polygon(bone, tp, 0.30, 0.45, 0.02 * h)
        add_ellipse(bone, v.to_xy(side * 0.24 * w, 0.62 * h)[0], (0.07 * w, 0.16 * h), 0.25,
                    angle=v.angle)
    lamina = v.to_xy(np.array([-0.36, 0.36, 0.12, -0.12]) * w,
                     np.array([0.0, 0.0, 0.5, 0.5]) * h)
    add_polygon(bone, lamina, 0.12)
    add_ellipse(bone, v.to_xy(0.0, 0.32 * h)[0], (0.055 * w, 0.32 * h), 0.25, angle=v.angle,
                rim_value=0.45, rim_thickness=0.025 * h)


def _draw_ribs(bone: np.ndarray, v: Vertebra, view: str) -> None:
    """Rib hints at thoracic levels."""
    w, h = v.width, v.height
    t = np.linspace(0.0, 1.0, 24)
    if view == 'ap':
        for side in (-1, 1):
            pts = v.to_xy(side * (0.55 * w + 2.2 * w * t), -0.2 * h + 1.4 * h * t ** 1.6
                          - 0.5 * h * np.sin(np.pi * t))
            add_polyline(bone, pts, 0.22, 0.22 * h)
    else:
        for shift in (0.0, 0.12):
            pts = v.to_xy(-0.9 * w + 2.6 * w * t, (-0.3 + shift) * h + 1.5 * h * t ** 1.3)
            add_polyline(bone, pts, 0.12, 0.2 * h)


def _draw_sacrum_pelvis(bone: np.ndarray, geom: SpineGeometry) -> None:
    """Sacrum (and iliac bones) below the lowest disc."""
    s = geom.sacrum
    w, h = s.width, s.height
    if geom.spec.view == 'lateral':
        pts = s.to_xy(np.array([-0.5, 0.5, 0.42, 0.1, -0.25, -0.55, -0.6]) * w,
                      np.array([0.0, 0.0, 0.9, 2.0, 2.7, 2.0, 0.8]) * h)
        add_polygon(bone, pts, 0.45, 0.8, 0.04 * h)
        ilium = s.to_xy(np.array([-1.6, -0.9, 0.2, 0.9, 1.1, 0.6, -0.3, -1.2]) * w,
                        np.array([0.2, -0.7, -0.9, -0.4, 0.6, 1.6, 2.2, 1.6]) * h)
        add_polygon(bone, ilium, 0.16, 0.3, 0.05 * h)
    else:
        pts = s.to_xy(np.array([-0.6, 0.6, 0.18, -0.18]) * w, np.array([0.0, 0.0, 2.6, 2.6]) * h)
        add_polygon(bone, pts, 0.45, 0.7, 0.04 * h)
        for row in range(4):
            for side in (-1, 1):
                add_ellipse(bone, s.to_xy(side * (0.3 - 0.05 * row) * w, (0.45 + 0.5 * row) * h)[0],
                            (0.06 * w, 0.08 * h), -0.25)
        for side in (-1, 1):
            wing = s.to_xy(side * np.array([0.55, 0.9, 1.6, 2.1, 2.0, 1.2, 0.4]) * w,
                           np.array([0.1, -0.6, -0.9, -0.5, 0.6, 1.6, 2.0]) * h)
            add_polygon(bone, wing, 0.3, 0.7, 0.05 * h)


def render_bone(geom: SpineGeometry) -> Tuple[np.ndarray, Dict[str, float]]:
    """Bone density map (H, W) float32 of the column, before lesion overlays.

    Returns:
        tuple: the map and a dict with reference sizes (``pitch``, ``body_h``, ``body_w``).
    """
    spec = geom.spec
    bone = np.zeros((spec.height, spec.width), np.float32)
    _draw_sacrum_pelvis(bone, geom)
    for v in geom.vertebrae:
        thick = 0.05 * v.height
        add_polygon(bone, v.outline(), 0.45 * v.density, 0.85, thick)
        if spec.view == 'lateral':
            _draw_lateral_elements(bone, v)
        else:
            _draw_ap_elements(bone, v, lumbar=v.index < 5)
        if v.index >= 5:
            _draw_ribs(bone, v, spec.view)
    ref = dict(pitch=float(np.mean(spec.body_h) + np.mean(spec.disc_h)),
               body_h=float(np.mean(spec.body_h)), body_w=float(np.mean(spec.body_w)))
    return bone, ref
