"""Additive drawing of polygons, polylines and ellipses on float32 density maps.

Every shape is drawn into a small zero-initialised region of interest and then *added* to the map,
so overlapping structures sum up as in a projection radiograph. Coordinates are float pixels
``(x, y)``; they are drawn with 4 fractional bits (``shift=4``) for sub-pixel placement.
"""
from typing import Optional, Tuple

import cv2
import numpy as np

_SHIFT = 4
_SCALE = float(1 << _SHIFT)


def _roi(shape: Tuple[int, int], pts: np.ndarray,
         pad: float) -> Optional[Tuple[int, int, int, int]]:
    """Integer ROI ``(x0, y0, x1, y1)`` covering ``pts`` plus ``pad``, clipped; None if empty."""
    h, w = shape
    x0 = max(int(np.floor(pts[:, 0].min() - pad)), 0)
    y0 = max(int(np.floor(pts[:, 1].min() - pad)), 0)
    x1 = min(int(np.ceil(pts[:, 0].max() + pad)) + 1, w)
    y1 = min(int(np.ceil(pts[:, 1].max() + pad)) + 1, h)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def _fixed(pts: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """Points relative to the ROI origin as fixed-point int32 for cv2 (``shift`` bits)."""
    rel = (np.asarray(pts, dtype=np.float64) - (x0, y0)) * _SCALE
    return np.round(rel).astype(np.int32).reshape(-1, 1, 2)


def add_polygon(canvas: np.ndarray, pts: np.ndarray, value: float, rim_value: float = 0.0,
                rim_thickness: float = 0.0) -> None:
    """Add a filled polygon of ``value`` with an optional rim (cortex) of ``rim_value``.

    Args:
        canvas (np.ndarray): float32 map (H, W), modified in place.
        pts (np.ndarray): (N, 2) polygon vertices in float pixels (x, y).
        value (float): density added inside the polygon.
        rim_value (float): density of the outline (replaces ``value`` there). 0 for no rim.
        rim_thickness (float): outline thickness in pixels.
    """
    pts = np.asarray(pts, dtype=np.float64)
    roi = _roi(canvas.shape, pts, rim_thickness + 2)
    if roi is None:
        return
    x0, y0, x1, y1 = roi
    tmp = np.zeros((y1 - y0, x1 - x0), np.float32)
    fixed = _fixed(pts, x0, y0)
    cv2.fillPoly(tmp, [fixed], float(value), lineType=cv2.LINE_8, shift=_SHIFT)
    if rim_value and rim_thickness > 0:
        cv2.polylines(tmp, [fixed], True, float(rim_value),
                      thickness=max(int(round(rim_thickness)), 1), lineType=cv2.LINE_8,
                      shift=_SHIFT)
    canvas[y0:y1, x0:x1] += tmp


def add_polyline(canvas: np.ndarray, pts: np.ndarray, value: float, thickness: float,
                 closed: bool = False) -> None:
    """Add a thick polyline of ``value`` (e.g. a rib, a rod, an endplate)."""
    pts = np.asarray(pts, dtype=np.float64)
    roi = _roi(canvas.shape, pts, thickness + 2)
    if roi is None:
        return
    x0, y0, x1, y1 = roi
    tmp = np.zeros((y1 - y0, x1 - x0), np.float32)
    cv2.polylines(tmp, [_fixed(pts, x0, y0)], closed, float(value),
                  thickness=max(int(round(thickness)), 1), lineType=cv2.LINE_8, shift=_SHIFT)
    canvas[y0:y1, x0:x1] += tmp


def ellipse_points(center: np.ndarray, axes: Tuple[float, float], angle: float = 0.0,
                   n: int = 48) -> np.ndarray:
    """(n, 2) outline points of an ellipse with semi-axes ``axes`` rotated by ``angle`` (rad)."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    ex, ey = axes[0] * np.cos(t), axes[1] * np.sin(t)
    ca, sa = np.cos(angle), np.sin(angle)
    return np.stack([center[0] + ca * ex - sa * ey, center[1] + sa * ex + ca * ey], axis=1)


def add_ellipse(canvas: np.ndarray, center: np.ndarray, axes: Tuple[float, float], value: float,
                angle: float = 0.0, rim_value: float = 0.0, rim_thickness: float = 0.0) -> None:
    """Add a filled ellipse (optionally with a rim); see :func:`add_polygon`."""
    add_polygon(canvas, ellipse_points(center, axes, angle), value, rim_value, rim_thickness)


def add_blob(canvas: np.ndarray, center: np.ndarray, radius: float, value: float,
             rng: np.random.Generator, irregularity: float = 0.25) -> np.ndarray:
    """Add an irregular round blob; returns its outline points (for boxes)."""
    n = 24
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    harmonics = rng.normal(0.0, irregularity / 2, size=(3, 2))
    r = np.ones(n)
    for k, (a, b) in enumerate(harmonics, start=2):
        r += a * np.cos(k * t) + b * np.sin(k * t)
    r = radius * np.clip(r, 0.5, 1.5)
    pts = np.stack([center[0] + r * np.cos(t), center[1] + r * np.sin(t)], axis=1)
    add_polygon(canvas, pts, value)
    return pts


def points_box(pts: np.ndarray, margin: float = 0.0) -> Tuple[float, float, float, float]:
    """Axis-aligned box ``(xmin, ymin, xmax, ymax)`` around points, grown by ``margin``."""
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    return (float(pts[:, 0].min() - margin), float(pts[:, 1].min() - margin),
            float(pts[:, 0].max() + margin), float(pts[:, 1].max() + margin))
