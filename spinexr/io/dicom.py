"""Read a DICOM radiograph into the image a radiologist's viewer shows.

Conventions of every function in this module:

* **Orientation**: the array is ``(H, W)``, row 0 is the first stored row (the top of the image as
  stored), column 0 the first stored column. Nothing is flipped or rotated.
* **Brightness**: stored values -> modality LUT (*Modality LUT Sequence* or *Rescale Slope /
  Intercept*) -> VOI transform -> ``MONOCHROME1`` inversion, so that bone is bright as in a viewer.
  The VOI transform is, in order of preference:

  1. the first item of the *VOI LUT Sequence*; its output is normalised by the range of the LUT's
     own entries (robust to the common descriptor that announces 16 bits for 12-bit entries);
  2. the first *Window Center* / *Window Width* pair (multi-valued windows: the first one), with
     the *VOI LUT Function* (``LINEAR`` default, ``LINEAR_EXACT``, ``SIGMOID``) as in PS3.3
     C.11.2.1.2; a width <= 0 (or < 1 for ``LINEAR``) counts as absent;
  3. a fallback window over the image's own values after the modality LUT: ``'minmax'`` (default,
     what viewers do without window tags) or ``'percentile'`` (``percentiles``, robust to burned-in
     labels). No fixed window is ever applied (a CT window such as WC 40 / WW 400 would saturate
     a 12-bit radiograph).

  *Presentation LUT Shape* is ignored (``MONOCHROME1`` is inverted, ``MONOCHROME2`` is not).
  Colour images (``RGB``, ``YBR_*``, ``PALETTE COLOR``) are converted to luminance, without VOI.
* **Output**: ``uint8`` in ``[0, 255]`` (default) or ``float32`` in ``[0, 1]``.
* **Stored depths** 1..16 bits, signed or unsigned; every transfer syntax pydicom can decode with
  the installed plugins (raw little/big endian, explicit/implicit VR, deflated, RLE, JPEG 2000 via
  ``pylibjpeg-openjpeg`` or Pillow, JPEG baseline via Pillow, JPEG lossless / JPEG-LS when
  ``pylibjpeg-libjpeg`` / ``pyjpegls`` are installed). A missing decoder raises
  :class:`MissingDecoderError` naming the package to install.
* **Reduced-resolution fast path**: with ``min_long_side=N``, a single-frame, unsigned, grey
  JPEG 2000 image is decoded at the coarsest wavelet resolution level whose longer side is still
  ``>= N`` (Pillow's OpenJPEG ``reduce``); the caller resizes the result. ``orig_height`` /
  ``orig_width`` always give the stored (full) size, so boxes in original pixels can be scaled.
"""
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np

PathLike = Union[str, Path]

#: Packages to install, per transfer syntax UID, when no decoder plugin is available.
_INSTALL_HINTS = {
    '1.2.840.10008.1.2.4.90': 'pylibjpeg and pylibjpeg-openjpeg (pip install pylibjpeg '
                              'pylibjpeg-openjpeg)',
    '1.2.840.10008.1.2.4.91': 'pylibjpeg and pylibjpeg-openjpeg (pip install pylibjpeg '
                              'pylibjpeg-openjpeg)',
    '1.2.840.10008.1.2.4.201': 'pylibjpeg and pylibjpeg-openjpeg (pip install pylibjpeg '
                               'pylibjpeg-openjpeg)',
    '1.2.840.10008.1.2.4.202': 'pylibjpeg and pylibjpeg-openjpeg (pip install pylibjpeg '
                               'pylibjpeg-openjpeg)',
    '1.2.840.10008.1.2.4.203': 'pylibjpeg and pylibjpeg-openjpeg (pip install pylibjpeg '
                               'pylibjpeg-openjpeg)',
    '1.2.840.10008.1.2.4.50': 'pillow or pylibjpeg + pylibjpeg-libjpeg (pip install pylibjpeg '
                              'pylibjpeg-libjpeg)',
    '1.2.840.10008.1.2.4.51': 'pylibjpeg and pylibjpeg-libjpeg (pip install pylibjpeg '
                              'pylibjpeg-libjpeg)',
    '1.2.840.10008.1.2.4.57': 'pylibjpeg and pylibjpeg-libjpeg (pip install pylibjpeg '
                              'pylibjpeg-libjpeg)',
    '1.2.840.10008.1.2.4.70': 'pylibjpeg and pylibjpeg-libjpeg (pip install pylibjpeg '
                              'pylibjpeg-libjpeg)',
    '1.2.840.10008.1.2.4.80': 'pyjpegls or pylibjpeg + pylibjpeg-libjpeg (pip install pyjpegls)',
    '1.2.840.10008.1.2.4.81': 'pyjpegls or pylibjpeg + pylibjpeg-libjpeg (pip install pyjpegls)',
    '1.2.840.10008.1.2.5': 'pylibjpeg and pylibjpeg-rle (pip install pylibjpeg pylibjpeg-rle)',
}
_J2K_SYNTAXES = ('1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.91')


class DicomReadError(RuntimeError):
    """A DICOM file could not be read or decoded; the message names the file and the reason."""


class MissingDecoderError(DicomReadError):
    """No installed plugin can decode the file's transfer syntax; the message names the package."""


@dataclass
class DicomImage:
    """A decoded, display-ready DICOM image and what is needed to map coordinates onto it.

    Attributes:
        image (np.ndarray): ``(H, W)`` ``uint8`` or ``float32`` display image (see module doc).
        orig_height (int): *Rows* of the stored image (full resolution).
        orig_width (int): *Columns* of the stored image (full resolution).
        reduce_level (int): Resolution levels skipped by the fast path (image is about
            ``orig / 2**reduce_level``); 0 for a full decode.
        voi_source (str): ``'lut'``, ``'window'``, ``'fallback-minmax'``,
            ``'fallback-percentile'`` or ``'colour'``.
        photometric (str): *Photometric Interpretation*.
        transfer_syntax (str): Transfer syntax UID.
        uids (dict): ``SOPInstanceUID``, ``SeriesInstanceUID``, ``StudyInstanceUID`` if present.
    """
    image: np.ndarray
    orig_height: int
    orig_width: int
    reduce_level: int = 0
    voi_source: str = ''
    photometric: str = ''
    transfer_syntax: str = ''
    uids: dict = field(default_factory=dict)

    @property
    def orig_shape(self) -> Tuple[int, int]:
        """tuple[int, int]: ``(orig_height, orig_width)``."""
        return self.orig_height, self.orig_width


def _dcmread(path: PathLike, stop_before_pixels: bool = False):
    import pydicom
    from pydicom.errors import InvalidDicomError
    try:
        return pydicom.dcmread(str(path), stop_before_pixels=stop_before_pixels)
    except FileNotFoundError:
        raise DicomReadError(f'{path}: file not found') from None
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError) as exc:
        raise DicomReadError(f'{path}: not a readable DICOM file ({type(exc).__name__}: '
                             f'{exc})') from exc


def read_dicom_shape(path: PathLike) -> Tuple[int, int]:
    """Return ``(Rows, Columns)`` of a DICOM file without decoding its pixels.

    Args:
        path (str | Path): DICOM file.

    Returns:
        tuple[int, int]: ``(height, width)`` of the stored image.
    """
    ds = _dcmread(path, stop_before_pixels=True)
    try:
        return int(ds['Rows'].value), int(ds['Columns'].value)
    except (KeyError, TypeError, ValueError) as exc:
        raise DicomReadError(f'{path}: no Rows/Columns ({exc})') from exc


def _check_decoder(path: PathLike, tsuid: str) -> None:
    from pydicom.pixels import get_decoder
    try:
        decoder = get_decoder(tsuid)
    except NotImplementedError as exc:
        raise MissingDecoderError(f'{path}: pydicom has no decoder for transfer syntax '
                                  f'{tsuid} ({exc})') from exc
    if not decoder.is_available:
        hint = _INSTALL_HINTS.get(tsuid, ' or '.join(decoder.missing_dependencies))
        raise MissingDecoderError(
            f'{path}: no installed plugin decodes transfer syntax {tsuid} '
            f'({getattr(tsuid, "name", "")}); install {hint}')


def _j2k_levels(codestream: bytes) -> int:
    """Number of wavelet decomposition levels in the main-header COD segment (0 if not found)."""
    pos = 2  # after SOC
    while pos + 4 <= len(codestream) and codestream[pos] == 0xFF:
        marker = codestream[pos + 1]
        if marker == 0x52 and pos + 10 <= len(codestream):  # COD: Lcod Scod SGcod(4) levels
            return int(codestream[pos + 9])
        if marker == 0x90:  # SOT: end of the main header
            return 0
        pos += 2 + int.from_bytes(codestream[pos + 2:pos + 4], 'big')
    return 0


def _decode_j2k_reduced(ds, min_long_side: int) -> Optional[Tuple[np.ndarray, int]]:
    """Decode a grey unsigned J2K frame at reduced resolution with Pillow, or return None."""
    from pydicom.encaps import generate_frames
    from pydicom.pixels.utils import get_j2k_parameters
    try:
        from PIL import Image, features
    except ImportError:
        return None
    if not features.check_codec('jpg_2000'):
        return None
    long_side = max(int(ds.Rows), int(ds.Columns))
    level = 0
    while long_side / 2**(level + 1) >= min_long_side:
        level += 1
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    level = min(level, _j2k_levels(frame))
    if level == 0:
        return None
    params = get_j2k_parameters(frame)
    precision = params.get('precision')
    if not precision or params.get('is_signed') or precision > 16:
        return None
    img = Image.open(io.BytesIO(frame), formats=('JPEG2000', ))
    img.reduce = level
    img.load()
    arr = np.asarray(img)
    if arr.ndim != 2:
        return None
    # Pillow scales N-bit samples up to 8 or 16 bits; undo it.
    shift = (8 if arr.dtype == np.uint8 else 16) - precision
    if shift > 0:
        arr = np.right_shift(arr, shift)
    return arr, level


def _window(arr: np.ndarray, center: float, width: float, function: str) -> Optional[np.ndarray]:
    """PS3.3 C.11.2.1.2 windowing to ``[0, 1]``; None for an invalid width."""
    function = (function or 'LINEAR').upper()
    center, width = np.float32(center), np.float32(width)
    if function == 'LINEAR_EXACT':
        if width <= 0:
            return None
        return np.clip((arr - center) / width + 0.5, 0, 1)
    if function == 'SIGMOID':
        if width <= 0:
            return None
        return 1.0 / (1.0 + np.exp(-4.0 * (arr - center) / width))
    if width < 1:
        return None
    if width == 1:
        return (arr >= center - 0.5).astype(np.float32)
    return np.clip((arr - (center - 0.5)) / (width - 1) + 0.5, 0, 1)


def _first(value) -> float:
    if value is None:
        raise ValueError('empty')
    try:
        return float(value[0])
    except TypeError:
        return float(value)


def _apply_voi(arr: np.ndarray, ds, voi: str, fallback: str,
               percentiles: Tuple[float, float]) -> Tuple[np.ndarray, str]:
    from pydicom.pixels.processing import apply_voi
    if voi == 'auto':
        seq = ds.get('VOILUTSequence')
        if seq and seq[0].get('LUTDescriptor') is not None and seq[0].get('LUTData') is not None:
            lut_in = np.rint(arr).astype(np.int64) if arr.dtype.kind == 'f' else arr
            out = apply_voi(lut_in, ds, index=0).astype(np.float32)
            desc = seq[0].LUTDescriptor
            first_map, n_entries = int(desc[1]), int(desc[0]) or 2**16
            lut = np.asarray(apply_voi(np.arange(first_map, first_map + n_entries), ds, index=0))
            lo, hi = float(lut.min()), float(lut.max())
            if hi > lo:
                return (out - lo) / (hi - lo), 'lut'
        if ds.get('WindowCenter') is not None and ds.get('WindowWidth') is not None:
            try:
                center, width = _first(ds.WindowCenter), _first(ds.WindowWidth)
            except (ValueError, TypeError, IndexError):
                center = width = float('nan')
            if np.isfinite(center) and np.isfinite(width):
                out = _window(arr, center, width,
                              str(ds.get('VOILUTFunction', 'LINEAR') or 'LINEAR'))
                if out is not None:
                    return out, 'window'
    elif voi != 'none':
        raise ValueError(f"voi must be 'auto' or 'none', got {voi!r}")
    if fallback == 'percentile':
        lo, hi = np.percentile(arr, percentiles)
    elif fallback == 'minmax':
        lo, hi = float(arr.min()), float(arr.max())
    else:
        raise ValueError(f"fallback must be 'minmax' or 'percentile', got {fallback!r}")
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.float32), f'fallback-{fallback}'
    return np.clip((arr - np.float32(lo)) / np.float32(hi - lo), 0, 1), f'fallback-{fallback}'


def load_dicom(path: PathLike,
               out_dtype: str = 'uint8',
               frame: int = 0,
               min_long_side: Optional[int] = None,
               voi: str = 'auto',
               fallback: str = 'minmax',
               percentiles: Tuple[float, float] = (0.5, 99.5)) -> DicomImage:
    """Decode a DICOM file into a display image plus its original size and metadata.

    Args:
        path (str | Path): DICOM file.
        out_dtype (str): ``'uint8'`` (``[0, 255]``) or ``'float32'`` (``[0, 1]``).
        frame (int): Frame index of a multi-frame file.
        min_long_side (int, optional): Allow a reduced-resolution JPEG 2000 decode whose longer
            side stays ``>= min_long_side`` (the caller resizes). None: always full resolution.
        voi (str): ``'auto'`` (VOI LUT, else window, else fallback) or ``'none'`` (fallback only).
        fallback (str): ``'minmax'`` or ``'percentile'`` window when no VOI is usable.
        percentiles (tuple[float, float]): Low/high percentiles of the ``'percentile'`` fallback.

    Returns:
        DicomImage: The display image (module conventions) and its original size.

    Raises:
        DicomReadError: The file is missing, not DICOM, has no pixels or fails to decode.
        MissingDecoderError: No installed plugin decodes its transfer syntax.
    """
    if out_dtype not in ('uint8', 'float32'):
        raise ValueError(f"out_dtype must be 'uint8' or 'float32', got {out_dtype!r}")
    with warnings.catch_warnings():
        # The release stores the hex image_id as SOPInstanceUID, not a valid UI value; pydicom
        # warns when the element is first decoded. Harmless here.
        warnings.filterwarnings('ignore', message='Invalid value for VR UI')
        return _load_dicom(path, out_dtype, frame, min_long_side, voi, fallback, percentiles)


def _load_dicom(path: PathLike, out_dtype: str, frame: int, min_long_side: Optional[int],
                voi: str, fallback: str, percentiles: Tuple[float, float]) -> DicomImage:
    ds = _dcmread(path)
    if 'PixelData' not in ds:
        raise DicomReadError(f'{path}: no Pixel Data element')
    tsuid = ds.file_meta.get('TransferSyntaxUID') if hasattr(ds, 'file_meta') else None
    if tsuid is None:
        raise DicomReadError(f'{path}: no Transfer Syntax UID in the file meta information')
    _check_decoder(path, tsuid)
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        photometric = str(ds.get('PhotometricInterpretation', 'MONOCHROME2')).strip().upper()
        samples = int(ds.get('SamplesPerPixel', 1))
    except (AttributeError, TypeError, ValueError) as exc:
        raise DicomReadError(f'{path}: bad image pixel module ({exc})') from exc
    level, arr = 0, None
    try:
        if (min_long_side and tsuid in _J2K_SYNTAXES and samples == 1 and frame == 0
                and int(ds.get('NumberOfFrames', 1) or 1) == 1
                and int(ds.get('PixelRepresentation', 0)) == 0 and photometric.startswith('MONO')):
            try:
                res = _decode_j2k_reduced(ds, int(min_long_side))
            except Exception:  # noqa: BLE001 - any fast-path failure falls back to pydicom
                res = None
            if res is not None:
                arr, level = res
        if arr is None:
            from pydicom.pixels import pixel_array
            arr = pixel_array(ds, index=frame)
    except MissingDecoderError:
        raise
    except Exception as exc:  # noqa: BLE001 - decoders raise many types
        raise DicomReadError(f'{path}: pixel data could not be decoded '
                             f'({type(exc).__name__}: {exc})') from exc

    if samples > 1 or photometric == 'PALETTE COLOR':
        if photometric == 'PALETTE COLOR':
            from pydicom.pixels.processing import apply_color_lut
            arr = apply_color_lut(arr, ds)
            max_val = float(2**int(ds.RedPaletteColorLookupTableDescriptor[2]) - 1)
        else:
            max_val = float(2**int(ds.get('BitsStored', 8)) - 1)
        rgb = arr.astype(np.float64)[..., :3] / max_val
        out = np.clip(rgb @ np.array([0.299, 0.587, 0.114]), 0, 1)
        source = 'colour'
    else:
        from pydicom.pixels.processing import apply_modality_lut
        arr = apply_modality_lut(arr, ds).astype(np.float32, copy=False)
        out, source = _apply_voi(arr, ds, voi=voi, fallback=fallback, percentiles=percentiles)
        if photometric == 'MONOCHROME1':
            out = 1.0 - out
    if out_dtype == 'uint8':
        image = np.rint(np.clip(out, 0, 1) * np.float32(255)).astype(np.uint8)
    else:
        image = np.clip(out, 0, 1).astype(np.float32)
    uids = {k: str(ds.get(k)) for k in ('SOPInstanceUID', 'SeriesInstanceUID', 'StudyInstanceUID')
            if ds.get(k) is not None}
    return DicomImage(image=np.ascontiguousarray(image), orig_height=rows, orig_width=cols,
                      reduce_level=level, voi_source=source, photometric=photometric,
                      transfer_syntax=str(tsuid), uids=uids)


def read_dicom(path: PathLike,
               out_dtype: str = 'uint8',
               frame: int = 0,
               min_long_side: Optional[int] = None,
               voi: str = 'auto',
               fallback: str = 'minmax',
               percentiles: Tuple[float, float] = (0.5, 99.5)) -> np.ndarray:
    """Decode a DICOM file into the ``(H, W)`` display image (see the module conventions).

    Same arguments as :func:`load_dicom`, which also returns the original size.

    Returns:
        np.ndarray: ``uint8`` ``[0, 255]`` or ``float32`` ``[0, 1]`` image, row 0 = top as stored.
    """
    return load_dicom(path, out_dtype=out_dtype, frame=frame, min_long_side=min_long_side, voi=voi,
                      fallback=fallback, percentiles=percentiles).image
