"""Tests of spinexr.io.dicom_writer: valid Part 10 files, exact round trip, tags, atomic write."""
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless

from spinexr.io.dicom_writer import TRANSFER_SYNTAXES, write_dicom

HEX_ID = '0a1b2c3d4e5f60718293a4b5c6d7e8f9'


def _pixels(shape=(64, 48), high=4096, seed=0):
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, high, shape, dtype=np.uint16)
    arr[0, 0], arr[-1, -1] = 0, high - 1  # full range
    return arr


@pytest.mark.parametrize('ts', sorted(TRANSFER_SYNTAXES))
def test_round_trip_exact(tmp_path, ts):
    arr = _pixels()
    path = write_dicom(tmp_path / 'a.dicom', arr, window=(2047.5, 4095), transfer_syntax=ts,
                       sop_instance_uid=HEX_ID)
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == TRANSFER_SYNTAXES[ts]
    np.testing.assert_array_equal(ds.pixel_array, arr)
    assert ds.pixel_array.dtype == np.uint16


def test_release_like_tags(tmp_path):
    arr = _pixels()
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # hex ids are written as given, without warnings
        path = write_dicom(tmp_path / 'a.dicom', arr, window=(1800.25, 3000),
                           sop_instance_uid=HEX_ID, study_instance_uid='ab' * 16,
                           series_instance_uid='cd' * 16, view_position='LL')
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == JPEG2000Lossless == '1.2.840.10008.1.2.4.90'
    assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID == '1.2.840.10008.5.1.4.1.1.1.1'
    # the release stores the hex image_id as SOPInstanceUID; the phantom does the same
    assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID == HEX_ID
    assert ds.StudyInstanceUID == 'ab' * 16 and ds.SeriesInstanceUID == 'cd' * 16
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (16, 12, 11, 0)
    assert (ds.Rows, ds.Columns, ds.SamplesPerPixel) == (64, 48, 1)
    assert ds.PhotometricInterpretation == 'MONOCHROME2'
    assert float(ds.RescaleSlope) == 1.0 and float(ds.RescaleIntercept) == 0.0
    assert float(ds.WindowCenter) == 1800.25 and float(ds.WindowWidth) == 3000.0
    assert ds.Modality == 'DX' and ds.ViewPosition == 'LL'
    assert 'VOILUTSequence' not in ds


def test_monochrome1_is_stored_as_given(tmp_path):
    arr = _pixels()
    path = write_dicom(tmp_path / 'm1.dicom', arr, photometric='MONOCHROME1', window=(100, 50))
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == 'MONOCHROME1'
    np.testing.assert_array_equal(ds.pixel_array, arr)  # no inversion by the writer


def test_generated_uids_are_valid(tmp_path):
    ds = pydicom.dcmread(write_dicom(tmp_path / 'g.dicom', _pixels(), modality='CR'))
    for uid in (ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID):
        assert uid.is_valid
    assert ds.SOPClassUID == '1.2.840.10008.5.1.4.1.1.1'


@pytest.mark.parametrize('bits', [8, 10, 16])
def test_other_depths(tmp_path, bits):
    arr = _pixels(high=1 << bits)
    path = write_dicom(tmp_path / 'd.dicom', arr, bits_stored=bits,
                       transfer_syntax='ExplicitVRLittleEndian')
    ds = pydicom.dcmread(path)
    assert ds.BitsStored == bits and ds.BitsAllocated == (8 if bits == 8 else 16)
    np.testing.assert_array_equal(ds.pixel_array, arr)


def test_bad_input_is_reported(tmp_path):
    with pytest.raises(ValueError, match='outside 0..4095'):
        write_dicom(tmp_path / 'x.dicom', np.full((4, 4), 4096, np.uint16))
    with pytest.raises(ValueError, match='2D'):
        write_dicom(tmp_path / 'x.dicom', np.zeros((2, 4, 4), np.uint16))
    with pytest.raises(ValueError, match='transfer syntax'):
        write_dicom(tmp_path / 'x.dicom', np.zeros((4, 4), np.uint16), transfer_syntax='JPEG')
    with pytest.raises(ValueError, match='32 x 32'):
        write_dicom(tmp_path / 'x.dicom', np.zeros((30, 20), np.uint16))
    write_dicom(tmp_path / 'ok.dicom', np.zeros((30, 20), np.uint16), transfer_syntax='RLELossless')
    (tmp_path / 'ok.dicom').unlink()
    with pytest.raises(ValueError, match='photometric'):
        write_dicom(tmp_path / 'x.dicom', np.zeros((4, 4), np.uint16), photometric='RGB')
    assert not list(tmp_path.iterdir())


def test_atomic_overwrite_leaves_no_temp_files(tmp_path):
    target = tmp_path / 'sub' / 'a.dicom'
    write_dicom(target, _pixels(seed=1))
    write_dicom(target, _pixels(seed=2))
    np.testing.assert_array_equal(pydicom.dcmread(target).pixel_array, _pixels(seed=2))
    assert [p.name for p in target.parent.iterdir()] == ['a.dicom']
