"""Imaging chain of the phantom: soft tissue, bone texture, blur, quantum-like noise, exposure,
12-bit quantisation, window tags and MONOCHROME1 storage.

The display convention is the radiologist's: bone and metal bright. Stored values are 12-bit
(0..4095). A MONOCHROME1 image stores ``4095 - value`` and its window centre ``4095 - centre``, so a
reader that applies the window and then inverts MONOCHROME1 shows the same picture.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np

from .anatomy import SpineGeometry
from .drawing import add_ellipse

MAX_STORED = 4095


@dataclass
class Exposure:
    """Content-independent exposure parameters of one image (drawn from the noise stream)."""

    soft_gain: float
    bone_gain: float
    low: float  # stored value of air
    high: float  # stored value of dense bone
    gamma: float
    noise: float  # noise std in stored units at air level
    blur: float  # system blur sigma in px
    full_window: bool  # window tags 2047.5/4095 (as in the real files) or fitted to the range
    window_jitter: Tuple[float, float]


def sample_exposure(rng: np.random.Generator, height: int) -> Exposure:
    """Draw exposure, blur and noise settings; ``height`` scales the blur with the image size."""
    return Exposure(
        soft_gain=rng.uniform(0.55, 0.85), bone_gain=rng.uniform(0.55, 0.8),
        low=rng.uniform(80, 700), high=rng.uniform(2900, 3900), gamma=rng.uniform(0.8, 1.25),
        noise=rng.uniform(6, 22), blur=max(rng.uniform(1.3, 2.8) * height / 2874, 0.4),
        full_window=bool(rng.random() < 0.35),
        window_jitter=(rng.uniform(0.96, 1.04), rng.uniform(0.9, 1.25)))


def _smooth_noise(rng: np.random.Generator, shape: Tuple[int, int], factor: int,
                  sigma: float) -> np.ndarray:
    """Zero-mean, unit-std random field of features ``factor`` px large, upsampled to ``shape``."""
    h, w = shape
    small = rng.standard_normal((max(h // factor, 2), max(w // factor, 2)), dtype=np.float32)
    small = cv2.GaussianBlur(small, (0, 0), sigma)
    small /= small.std() + 1e-6
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def render_soft_tissue(geom: SpineGeometry, rng: np.random.Generator) -> np.ndarray:
    """Soft-tissue thickness map in [0, 1] (torso cross-section, bowel gas), float32 (H, W)."""
    spec = geom.spec
    h, w = spec.height, spec.width
    f = 4
    hs, ws = max(h // f, 2), max(w // f, 2)
    ys = (np.arange(hs, dtype=np.float32) + 0.5) * f
    xs = (np.arange(ws, dtype=np.float32) + 0.5) * f
    ref_w = float(np.mean(spec.body_w))
    if spec.view == 'lateral':
        # torso centre lies anterior of the column; the back's skin ~1.6 body depths behind it
        back = rng.uniform(1.5, 2.0) * ref_w
        half = rng.uniform(2.2, 3.2) * ref_w
        center = spec.x0 - spec.facing * back + spec.facing * half
        slope = rng.normal(0, 0.05)
    else:
        half = w * rng.uniform(0.45, 0.75)
        center = spec.x0 + rng.normal(0, 0.03 * w)
        slope = rng.normal(0, 0.03)
    c = center + slope * (ys - h / 2)
    half_y = half * (1 + 0.15 * np.sin(ys / h * np.pi * rng.uniform(0.5, 1.5)))
    r = (xs[None, :] - c[:, None]) / half_y[:, None]
    soft = np.sqrt(np.clip(1.0 - r ** 2, 0.0, None)).astype(np.float32)
    soft *= 1.0 + 0.08 * _smooth_noise(rng, (hs, ws), 8, 1.5)
    gas = np.zeros_like(soft)
    for _ in range(int(rng.integers(2, 9))):
        cx = c[hs // 2] + spec.facing * rng.uniform(0.0, 0.9) * half
        if spec.view == 'ap':
            cx = c[hs // 2] + rng.uniform(-0.8, 0.8) * half
        cy = rng.uniform(0.3, 1.0) * h
        ax = (rng.uniform(0.1, 0.35) * ref_w, rng.uniform(0.08, 0.25) * ref_w)
        add = np.array([cx / f, cy / f])
        add_ellipse(gas, add, (ax[0] / f, ax[1] / f), rng.uniform(0.15, 0.35),
                    angle=rng.uniform(0, np.pi))
    gas = cv2.GaussianBlur(gas, (0, 0), 1.5)
    soft = np.clip(soft - gas * (soft > 0.2), 0.0, None)
    return cv2.resize(soft, (w, h), interpolation=cv2.INTER_LINEAR)


def bone_texture(rng: np.random.Generator, shape: Tuple[int, int], body_h: float) -> np.ndarray:
    """Multiplicative trabecular texture around 1 (fine and coarse octaves)."""
    fine = max(int(body_h / 40), 2)
    tex = 1.0 + 0.18 * _smooth_noise(rng, shape, fine, 0.8)
    tex += 0.08 * _smooth_noise(rng, shape, fine * 6, 1.0)
    return tex


MARKER_DENSITY = 2.5  # density of the lead letter in the metal map


def add_marker(metal: np.ndarray, rng: np.random.Generator) -> None:
    """A lead side marker ('L' or 'R') in a corner, as on most radiographs.

    The letter is rasterised into a uint8 mask and written into ``metal`` (any dtype) as
    :data:`MARKER_DENSITY`: OpenCV 5's ``putText`` draws only on 8-bit images (OpenCV 4 also drew
    on float ones). With ``LINE_8`` (no anti-aliasing) the pixels under OpenCV 4 are exactly the
    ones it set when drawing on the float map directly. OpenCV 5 rasterises the Hershey letter a
    little differently, so between OpenCV 4 and 5 the letter's pixels, and only they, differ.

    Args:
        metal (np.ndarray): (H, W) metal density map, modified in place.
        rng (np.random.Generator): Draws the letter, its size and its corner.
    """
    h, w = metal.shape
    size = max(h * rng.uniform(0.012, 0.02), 4.0)
    scale = size / 22.0
    text = str(rng.choice(['L', 'R']))
    x = int(w * rng.choice([0.05, 0.85]))
    y = int(h * rng.choice([0.08, 0.95]))
    mask = np.zeros((h, w), np.uint8)
    cv2.putText(mask, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, 1,
                max(int(round(scale * 2.5)), 1), cv2.LINE_8)
    metal[mask > 0] = MARKER_DENSITY


def expose(soft: np.ndarray, bone: np.ndarray, metal: np.ndarray, exposure: Exposure,
           rng: np.random.Generator) -> np.ndarray:
    """Combine the density maps into 12-bit stored values (MONOCHROME2 convention), uint16.

    The mapping from density to stored value does not depend on the image content (only on
    ``exposure``), so the same seed with and without a lesion differs only around the lesion.
    """
    e = exposure
    v = e.soft_gain * soft + e.bone_gain * bone + metal
    v = cv2.GaussianBlur(v, (0, 0), e.blur)
    ref = e.soft_gain + 1.3 * e.bone_gain
    x = np.clip(v / ref, 0.0, None)
    x = np.power(x, e.gamma, dtype=np.float32) if e.gamma != 1.0 else x
    stored = e.low + (e.high - e.low) * x
    h, w = stored.shape
    grad = 1.0 + 0.04 * (np.arange(h, dtype=np.float32)[:, None] / h - 0.5)  # heel effect
    stored *= grad
    noise = rng.standard_normal(stored.shape, dtype=np.float32)
    if e.blur > 0.6:
        noise = cv2.GaussianBlur(noise, (0, 0), 0.5) * 1.6
    stored += noise * (e.noise * (1.0 + 1.5 * np.clip(x, 0.0, 1.5)))
    return np.clip(np.rint(stored), 0, MAX_STORED).astype(np.uint16)


def window_tags(exposure: Exposure) -> Tuple[float, float]:
    """(WindowCenter, WindowWidth) for MONOCHROME2 stored values."""
    if exposure.full_window:
        return 2047.5, 4095.0
    jc, jw = exposure.window_jitter
    low, high = exposure.low, exposure.high * 1.05
    center = 0.5 * (low + high) * jc
    width = (high - low) * jw
    return round(float(center), 1), round(float(width), 1)


def to_monochrome1(stored: np.ndarray,
                   window: Optional[Tuple[float, float]]) -> Tuple[np.ndarray, Optional[tuple]]:
    """Invert stored values and the window centre for MONOCHROME1 storage."""
    inv = (MAX_STORED - stored.astype(np.int32)).astype(np.uint16)
    if window is None:
        return inv, None
    return inv, (MAX_STORED - window[0], window[1])
