"""Ultralytics' HSV colour augmentation as an mmdet pipeline transform.

Why this exists: mmdet's ``YOLOXHSVRandomAug`` (YOLOX's jitter) *adds* integer offsets to hue,
saturation and value, and switches each channel on or off at random. Ultralytics, whose YOLO11
recipe spinexr reproduces, shifts hue additively but *scales* saturation and value: a pixel's value
``v`` becomes ``v * (1 + g)`` with ``g`` drawn uniformly from ``[-value_gain, value_gain]``. On a
radiograph (grey, so saturation is 0 and only value acts) this is a random contrast-preserving
brightness scaling: black background stays black, whereas YOLOX's offset lifts it to grey.

:class:`UltralyticsHSVRandomAug` draws its random numbers from numpy's *global* stream, the same
number in the same order as Ultralytics' ``RandomHSV`` (one ``np.random.uniform(-1, 1, 3)`` per
3-channel image, none otherwise), so under the same ``np.random.seed`` both return the same image
bit for bit. spinexr's ``ResumeStateHook`` saves and restores that global stream.
"""
import math
from numbers import Real
from typing import Optional

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from mmdet.registry import TRANSFORMS

# Every uint8 level, as float64: the lookup tables are computed on these, then truncated to uint8.
_LEVELS = np.arange(256, dtype=np.float64)
# OpenCV's 8-bit HSV: hue in [0, 180), saturation and value in [0, 255].
_HUE_RANGE = 180.0


def _check_gain(name: str, value: object) -> float:
    """Validate one gain: a real number in ``[0, 1]`` (Ultralytics' own bound for hsv_h/s/v).

    Args:
        name (str): Argument name, for the error message.
        value (object): The value passed.

    Returns:
        float: ``value`` as a float.

    Raises:
        ValueError: If ``value`` is not a real number (bools and strings included), is NaN, or
            lies outside ``[0, 1]``.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f'UltralyticsHSVRandomAug: {name} must be a number in [0, 1], '
                         f'got {value!r} ({type(value).__name__})')
    value = float(value)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f'UltralyticsHSVRandomAug: {name} must lie in [0, 1], got {value}')
    return value


def hsv_lookup_table(hue_shift: float, saturation_scale: float,
                     value_scale: float) -> np.ndarray:
    """Build the 3-channel uint8 lookup table that applies one HSV draw to an OpenCV HSV image.

    Args:
        hue_shift (float): Hue shift as a fraction of the hue circle (``g_h``; the shift is
            ``g_h * 180`` OpenCV hue units, wrapped modulo 180).
        saturation_scale (float): Saturation gain ``g_s``; saturation becomes ``s * (1 + g_s)``,
            clipped to ``[0, 255]``. Saturation 0 stays 0, so grey pixels never gain a colour.
        value_scale (float): Value gain ``g_v``; value becomes ``v * (1 + g_v)``, clipped to
            ``[0, 255]``.

    Returns:
        np.ndarray: ``(1, 256, 3)`` uint8 table for ``cv2.LUT`` (channels H, S, V). Results are
        truncated (not rounded) to integers, as Ultralytics does.
    """
    hue = np.mod(_LEVELS + hue_shift * _HUE_RANGE, _HUE_RANGE)
    saturation = np.clip(_LEVELS * (saturation_scale + 1.0), 0.0, 255.0)
    value = np.clip(_LEVELS * (value_scale + 1.0), 0.0, 255.0)
    table = np.empty((1, 256, 3), dtype=np.uint8)
    table[0, :, 0] = hue.astype(np.uint8)
    table[0, :, 1] = saturation.astype(np.uint8)
    table[0, :, 2] = value.astype(np.uint8)
    table[0, 0, 1] = 0  # keep unsaturated (grey, white) pixels unsaturated
    return table


@TRANSFORMS.register_module()
class UltralyticsHSVRandomAug(BaseTransform):
    """Random HSV augmentation with Ultralytics' semantics and random-number use.

    For each 3-channel image, draws ``u ~ U(-1, 1)^3`` from the global ``np.random`` stream and
    sets ``g = u * (hue_gain, saturation_gain, value_gain)``. Then, in OpenCV's 8-bit HSV space:
    hue ``h -> (h + 180 * g_h) mod 180``; saturation ``s -> clip(s * (1 + g_s), 0, 255)`` (``s = 0``
    kept); value ``v -> clip(v * (1 + g_v), 0, 255)``; results truncated to uint8. With the same
    seed the output equals Ultralytics' ``RandomHSV(hgain, sgain, vgain)`` bit for bit.

    Images that are not 3-channel (``(H, W)``, ``(H, W, 1)`` grey, or 4-channel) are returned
    unchanged and consume no random numbers, as in Ultralytics. Load radiographs with
    ``color_type='color'`` (grey replicated to 3 channels) for the value gain to act; on such grey
    images hue and saturation change nothing.

    Required Keys:

    - img (np.ndarray): BGR uint8 image ``(H, W, 3)``.

    Modified Keys:

    - img (a new array; the input array is not written to)

    Args:
        hue_gain (float): Largest hue shift, as a fraction of the hue circle, in ``[0, 1]``.
            Ultralytics' ``hsv_h``. Defaults to 0.015.
        saturation_gain (float): Largest relative saturation change, in ``[0, 1]``. Ultralytics'
            ``hsv_s``. Defaults to 0.7.
        value_gain (float): Largest relative value (brightness) change, in ``[0, 1]``.
            Ultralytics' ``hsv_v``. Defaults to 0.4.

    Raises:
        ValueError: If a gain is not a number in ``[0, 1]``.

    Examples:
        >>> aug = UltralyticsHSVRandomAug(hue_gain=0.015, saturation_gain=0.7, value_gain=0.4)
        >>> out = aug(dict(img=np.zeros((8, 8, 3), np.uint8)))['img']  # black stays black
    """

    def __init__(self,
                 hue_gain: float = 0.015,
                 saturation_gain: float = 0.7,
                 value_gain: float = 0.4) -> None:
        self.hue_gain = _check_gain('hue_gain', hue_gain)
        self.saturation_gain = _check_gain('saturation_gain', saturation_gain)
        self.value_gain = _check_gain('value_gain', value_gain)

    def _draw_gains(self) -> Optional[np.ndarray]:
        """Draw ``(g_h, g_s, g_v)`` from the global stream; ``None`` (no draw) if all gains are 0.

        Returns:
            Optional[np.ndarray]: ``(3, )`` float64 gains, or ``None``.
        """
        if not (self.hue_gain or self.saturation_gain or self.value_gain):
            return None
        limits = np.array([self.hue_gain, self.saturation_gain, self.value_gain], np.float64)
        return np.random.uniform(-1.0, 1.0, 3) * limits

    def transform(self, results: dict) -> dict:
        """Apply one random HSV change to ``results['img']``.

        Args:
            results (dict): Pipeline results with ``img``.

        Returns:
            dict: ``results`` with ``img`` replaced by the augmented image (same shape and dtype).

        Raises:
            ValueError: If a 3-channel ``img`` is not uint8 (the error names ``img_path``).
        """
        img = results['img']
        if img.ndim != 3 or img.shape[2] != 3:
            return results  # grey or 4-channel: unchanged, no random draw (as Ultralytics)
        if img.dtype != np.uint8:
            raise ValueError(f'UltralyticsHSVRandomAug needs a uint8 BGR image, got dtype '
                             f'{img.dtype} for {results.get("img_path", "<no img_path>")}')
        gains = self._draw_gains()
        if gains is None:
            return results
        table = hsv_lookup_table(gains[0], gains[1], gains[2])
        hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
        results['img'] = cv2.cvtColor(cv2.LUT(hsv, table), cv2.COLOR_HSV2BGR)
        return results

    def __repr__(self) -> str:
        """Return the transform with its gains, e.g. for the pipeline printout."""
        return (f'{self.__class__.__name__}(hue_gain={self.hue_gain}, '
                f'saturation_gain={self.saturation_gain}, value_gain={self.value_gain})')
