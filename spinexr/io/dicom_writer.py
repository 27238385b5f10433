"""Write single-frame grey radiographs as DICOM Part 10 files (pydicom 3).

The files look like the VinDr-SpineXR release: Digital X-Ray (or CR) SOP class, 16 bits allocated,
12 bits stored (configurable), unsigned, RescaleSlope 1 / RescaleIntercept 0, WindowCenter /
WindowWidth tags, and JPEG 2000 lossless pixel data by default (needs ``pylibjpeg`` and
``pylibjpeg-openjpeg``); explicit VR little endian and RLE lossless are available too.

``pixels`` are *stored* values. The writer never inverts them: for MONOCHROME1 the caller passes
the already inverted values (and a window centre on the same scale), so that a reader that applies
the window and then inverts MONOCHROME1 shows bone bright.

UIDs: the real release stores the 32-hex ``image_id`` as SOPInstanceUID (and, in the same way, the
hex study/series ids), which is not a valid DICOM UID (digits and dots only). To be a faithful
stand-in the writer stores such values as given, without pydicom's UID validation, so readers meet
the same quirk as on the real data. Valid UIDs are written as usual; missing ones are generated.
"""
import os
import uuid
import warnings
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np

__all__ = ['write_dicom', 'TRANSFER_SYNTAXES']

#: Transfer syntaxes the writer supports: name -> UID.
TRANSFER_SYNTAXES = {
    'JPEG2000Lossless': '1.2.840.10008.1.2.4.90',
    'ExplicitVRLittleEndian': '1.2.840.10008.1.2.1',
    'RLELossless': '1.2.840.10008.1.2.5',
}

_SOP_CLASSES = {
    'DX': '1.2.840.10008.5.1.4.1.1.1.1',  # Digital X-Ray Image Storage - For Presentation
    'CR': '1.2.840.10008.5.1.4.1.1.1',  # Computed Radiography Image Storage
}


def _set_uid(ds, keyword: str, value: str) -> None:
    """Set a UI element, bypassing validation for release-style (hex) identifiers."""
    from pydicom import config
    from pydicom.datadict import tag_for_keyword
    from pydicom.dataelem import DataElement
    ds[tag_for_keyword(keyword)] = DataElement(tag_for_keyword(keyword), 'UI', value,
                                               validation_mode=config.IGNORE)


def _ds_number(x: float) -> str:
    """Short decimal string (DS values hold at most 16 characters)."""
    s = f'{float(x):.4f}'.rstrip('0').rstrip('.')
    return s if len(s) <= 16 else f'{float(x):.6g}'


def _compress(ds, ts: str, arr: np.ndarray, path: Path) -> None:
    """Encode the pixel data in place; a missing encoder plugin is named in the error."""
    from pydicom.pixels.encoders import JPEG2000LosslessEncoder
    if ts == TRANSFER_SYNTAXES['JPEG2000Lossless'] and not JPEG2000LosslessEncoder.is_available:
        raise RuntimeError(f'{path}: writing JPEG 2000 needs the packages "pylibjpeg" and '
                           '"pylibjpeg-openjpeg" (pip install pylibjpeg pylibjpeg-openjpeg)')
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='Invalid value for VR UI')
        ds.compress(ts, arr, generate_instance_uid=False)


def write_dicom(path: Union[str, Path], pixels: np.ndarray, *, bits_stored: int = 12,
                photometric: str = 'MONOCHROME2',
                window: Optional[Tuple[float, float]] = None,
                transfer_syntax: str = TRANSFER_SYNTAXES['JPEG2000Lossless'],
                sop_instance_uid: Optional[str] = None,
                study_instance_uid: Optional[str] = None,
                series_instance_uid: Optional[str] = None,
                modality: str = 'DX', patient_id: str = '', body_part: str = 'SPINE',
                view_position: str = '',
                pixel_spacing: Optional[Tuple[float, float]] = None) -> Path:
    """Write a 2D grey image as a DICOM file, atomically (temporary file + ``os.replace``).

    Args:
        path (str | Path): destination file (e.g. ``<image_id>.dicom``).
        pixels (np.ndarray): (rows, columns) stored values, unsigned integers in
            ``0 .. 2**bits_stored - 1``.
        bits_stored (int): BitsStored, 8..16 (BitsAllocated is 16; 8 for ``bits_stored == 8``).
        photometric (str): 'MONOCHROME2' (high = bright) or 'MONOCHROME1' (high = dark).
        window (tuple, optional): (WindowCenter, WindowWidth) on the stored-value scale.
        transfer_syntax (str): a UID or a key of :data:`TRANSFER_SYNTAXES`.
        sop_instance_uid (str, optional): SOPInstanceUID; generated if None. The release stores
            the hex image_id here; that is allowed (see the module docstring).
        study_instance_uid (str, optional): StudyInstanceUID; generated if None.
        series_instance_uid (str, optional): SeriesInstanceUID; generated if None.
        modality (str): 'DX' (Digital X-Ray for presentation) or 'CR'.
        patient_id (str): PatientID (anonymised data: empty).
        body_part (str): BodyPartExamined.
        view_position (str): ViewPosition, e.g. 'AP' or 'LL'.
        pixel_spacing (tuple, optional): (row, column) spacing in mm.

    Returns:
        Path: the written file.

    Raises:
        ValueError: on a non-2D array, values outside the stored range, unknown options, or an
            image under 32 x 32 pixels for JPEG 2000 (the encoder uses 6 DWT resolutions).
        RuntimeError: when the JPEG 2000 encoder (pylibjpeg-openjpeg) is missing.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, generate_uid

    path = Path(path)
    arr = np.asarray(pixels)
    if arr.ndim != 2:
        raise ValueError(f'{path}: expected a 2D (rows, columns) array, got shape {arr.shape}')
    if not 8 <= bits_stored <= 16:
        raise ValueError(f'{path}: bits_stored must be 8..16, got {bits_stored}')
    if photometric not in ('MONOCHROME1', 'MONOCHROME2'):
        raise ValueError(f'{path}: photometric must be MONOCHROME1 or MONOCHROME2')
    if modality not in _SOP_CLASSES:
        raise ValueError(f'{path}: modality must be one of {sorted(_SOP_CLASSES)}')
    ts = UID(TRANSFER_SYNTAXES.get(transfer_syntax, transfer_syntax))
    if ts not in TRANSFER_SYNTAXES.values():
        raise ValueError(f'{path}: unsupported transfer syntax {transfer_syntax!r}; '
                         f'use one of {sorted(TRANSFER_SYNTAXES)}')
    max_value = (1 << bits_stored) - 1
    if arr.size and (arr.min() < 0 or arr.max() > max_value):
        raise ValueError(f'{path}: pixel values {arr.min()}..{arr.max()} outside 0..{max_value} '
                         f'(bits_stored={bits_stored})')
    bits_allocated = 8 if bits_stored == 8 else 16
    arr = np.ascontiguousarray(arr, dtype=np.uint8 if bits_allocated == 8 else np.uint16)

    sop_instance_uid = sop_instance_uid or generate_uid()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = _SOP_CLASSES[modality]
    _set_uid(ds.file_meta, 'MediaStorageSOPInstanceUID', sop_instance_uid)
    ds.file_meta.TransferSyntaxUID = TRANSFER_SYNTAXES['ExplicitVRLittleEndian']
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SOPClassUID = _SOP_CLASSES[modality]
    _set_uid(ds, 'SOPInstanceUID', sop_instance_uid)
    _set_uid(ds, 'StudyInstanceUID', study_instance_uid or generate_uid())
    _set_uid(ds, 'SeriesInstanceUID', series_instance_uid or generate_uid())
    ds.Modality = modality
    ds.PatientID = patient_id
    ds.PatientName = ''
    ds.BodyPartExamined = body_part
    if view_position:
        ds.ViewPosition = view_position
    ds.ImageType = ['DERIVED', 'PRIMARY']
    ds.PresentationIntentType = 'FOR PRESENTATION'
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Rows, ds.Columns = int(arr.shape[0]), int(arr.shape[1])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = bits_allocated
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = '0'
    ds.RescaleSlope = '1'
    ds.RescaleType = 'US'
    if window is not None:
        ds.WindowCenter = _ds_number(window[0])
        ds.WindowWidth = _ds_number(window[1])
    if pixel_spacing is not None:
        ds.PixelSpacing = [_ds_number(pixel_spacing[0]), _ds_number(pixel_spacing[1])]
    ds.PixelData = arr.tobytes()
    if ts == TRANSFER_SYNTAXES['JPEG2000Lossless'] and min(arr.shape) < 32:
        raise ValueError(f'{path}: JPEG 2000 (6 DWT resolutions) needs at least 32 x 32 pixels, '
                         f'got {arr.shape}; use ExplicitVRLittleEndian or RLELossless')
    if ts != TRANSFER_SYNTAXES['ExplicitVRLittleEndian']:
        _compress(ds, ts, arr, path)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp')
    try:
        with warnings.catch_warnings():  # copies of release-style (hex) UIDs re-validate
            warnings.filterwarnings('ignore', message='Invalid value for VR UI')
            ds.save_as(tmp, enforce_file_format=True)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
