"""Medical image I/O: DICOM reading (decode, modality/VOI LUT, MONOCHROME1)."""
from .dicom import (DicomImage, DicomReadError, MissingDecoderError, load_dicom, read_dicom,
                    read_dicom_shape)
from .dicom_writer import write_dicom

__all__ = ['DicomImage', 'DicomReadError', 'MissingDecoderError', 'load_dicom', 'read_dicom',
           'read_dicom_shape', 'write_dicom']
