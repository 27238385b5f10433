"""Tests of spinexr.io.dicom: transfer syntaxes, modality/VOI LUT, window, fallback, inversion."""
import io

import numpy as np
import pytest
from pydicom import uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence

from spinexr.io import DicomReadError, MissingDecoderError, load_dicom, read_dicom, read_dicom_shape


def make_dicom(path, arr, bits_stored=12, transfer_syntax=uid.ExplicitVRLittleEndian,
               photometric='MONOCHROME2', **tags):
    """Write ``arr`` (stored values) as a DICOM file with the given transfer syntax and tags."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.1.1'
    ds.file_meta.MediaStorageSOPInstanceUID = uid.generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = 'DX'
    ds.Rows, ds.Columns = arr.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = arr.dtype.itemsize * 8
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = int(arr.dtype.kind == 'i')
    ds.PixelData = arr.tobytes()
    for key, value in tags.items():
        setattr(ds, key, value)
    if transfer_syntax in (uid.RLELossless, uid.JPEG2000Lossless):
        ds.compress(transfer_syntax, arr, generate_instance_uid=False)
    elif transfer_syntax == uid.ExplicitVRBigEndian:
        ds.PixelData = arr.astype(arr.dtype.newbyteorder('>')).tobytes()
        ds.file_meta.TransferSyntaxUID = transfer_syntax
    else:
        ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.save_as(str(path), enforce_file_format=True)
    return str(path)


def ramp(shape=(64, 48), high=4095, dtype=np.uint16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, high + 1, size=shape).astype(dtype)


def linear_window(x, c, w):
    return np.clip((x - (c - 0.5)) / (w - 1) + 0.5, 0, 1)


@pytest.mark.parametrize('ts', [
    uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian, uid.ExplicitVRBigEndian,
    uid.DeflatedExplicitVRLittleEndian, uid.RLELossless, uid.JPEG2000Lossless
])
def test_transfer_syntaxes_with_window(tmp_path, ts):
    arr = ramp()
    path = make_dicom(tmp_path / 'a.dcm', arr, transfer_syntax=ts, WindowCenter=2047.5,
                      WindowWidth=4095)
    dimg = load_dicom(path, out_dtype='float32')
    assert dimg.voi_source == 'window'
    assert dimg.transfer_syntax == ts
    assert dimg.image.dtype == np.float32 and dimg.image.shape == arr.shape
    np.testing.assert_allclose(dimg.image, linear_window(arr.astype(np.float64), 2047.5, 4095),
                               atol=1e-5)
    u8 = read_dicom(path)
    assert u8.dtype == np.uint8
    np.testing.assert_array_equal(u8, np.rint(dimg.image * 255).astype(np.uint8))


def test_row_zero_is_top_no_flip(tmp_path):
    arr = np.zeros((64, 48), np.uint16)
    arr[:8, :4] = 4095  # bright top-left corner
    img = read_dicom(make_dicom(tmp_path / 'a.dcm', arr, transfer_syntax=uid.JPEG2000Lossless))
    assert img[0, 0] == 255 and img[-1, -1] == 0 and img[0, -1] == 0


def test_jpeg_baseline_via_pillow(tmp_path):
    from PIL import Image
    arr = np.tile(np.linspace(0, 255, 48, dtype=np.uint8), (64, 1))
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format='JPEG', quality=95)
    path = tmp_path / 'j.dcm'
    make_dicom(path, arr, bits_stored=8, transfer_syntax=uid.ExplicitVRLittleEndian)
    import pydicom
    ds = pydicom.dcmread(path)
    ds.PixelData = encapsulate([buf.getvalue()])
    ds['PixelData'].VR = 'OB'
    ds.file_meta.TransferSyntaxUID = uid.JPEGBaseline8Bit
    ds.save_as(path, enforce_file_format=True)
    img = read_dicom(path)  # no window -> min/max of the decoded image
    assert img.shape == arr.shape
    assert np.abs(img.astype(int) - arr.astype(int)).mean() < 4


def test_rescale_slope_intercept_then_window(tmp_path):
    arr = ramp(high=1000)
    path = make_dicom(tmp_path / 'a.dcm', arr, RescaleSlope=2, RescaleIntercept=-1000,
                      WindowCenter=0, WindowWidth=1000)
    out = read_dicom(path, out_dtype='float32')
    np.testing.assert_allclose(out, linear_window(arr * 2.0 - 1000, 0, 1000), atol=1e-5)


def test_voi_lut_sequence_preferred_over_window(tmp_path):
    arr = ramp(high=4095)
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 16]  # classic descriptor bug: says 16 bits, entries 12 bits
    lut = (4095 - np.arange(4096)).astype(np.uint16)  # an inverting LUT, easy to recognise
    item.LUTData = lut.tolist()
    item['LUTData'].VR = 'US'
    path = make_dicom(tmp_path / 'a.dcm', arr, VOILUTSequence=Sequence([item]), WindowCenter=100,
                      WindowWidth=10)
    dimg = load_dicom(path, out_dtype='float32')
    assert dimg.voi_source == 'lut'
    np.testing.assert_allclose(dimg.image, (4095 - arr) / 4095.0, atol=1e-5)


def test_multi_valued_window_uses_first(tmp_path):
    arr = ramp()
    path = make_dicom(tmp_path / 'a.dcm', arr, WindowCenter=[1000, 3000], WindowWidth=[500, 100])
    out = read_dicom(path, out_dtype='float32')
    np.testing.assert_allclose(out, linear_window(arr.astype(float), 1000, 500), atol=1e-5)


@pytest.mark.parametrize('function', ['LINEAR_EXACT', 'SIGMOID'])
def test_voi_lut_function(tmp_path, function):
    arr = ramp()
    path = make_dicom(tmp_path / 'a.dcm', arr, WindowCenter=2000, WindowWidth=1000,
                      VOILUTFunction=function)
    out = read_dicom(path, out_dtype='float32').astype(np.float64)
    x = arr.astype(np.float64)
    ref = (np.clip((x - 2000) / 1000 + 0.5, 0, 1) if function == 'LINEAR_EXACT' else 1 /
           (1 + np.exp(-4 * (x - 2000) / 1000)))
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_fallback_minmax_and_percentile(tmp_path):
    arr = np.full((64, 48), 1000, np.uint16)
    arr[:, 24:] = 3000
    arr[0, 0] = 4095  # a burned-in marker
    path = make_dicom(tmp_path / 'a.dcm', arr)
    dimg = load_dicom(path, out_dtype='float32')
    assert dimg.voi_source == 'fallback-minmax'
    assert dimg.image.min() == 0 and dimg.image.max() == 1
    assert dimg.image[5, 30] == pytest.approx((3000 - 1000) / 3095, abs=1e-6)
    pct = load_dicom(path, out_dtype='float32', fallback='percentile')
    assert pct.voi_source == 'fallback-percentile'
    assert pct.image[5, 30] == pytest.approx(1.0) and pct.image[5, 5] == pytest.approx(0.0)
    # an unusable window (width 0) falls back instead of failing
    bad = make_dicom(tmp_path / 'b.dcm', arr, WindowCenter=100, WindowWidth=0)
    assert load_dicom(bad).voi_source == 'fallback-minmax'
    # a flat image does not divide by zero
    flat = make_dicom(tmp_path / 'c.dcm', np.full((64, 48), 7, np.uint16))
    assert read_dicom(flat).max() == 0


def test_no_fixed_ct_window(tmp_path):
    """A 12-bit radiograph without window tags must use its range, not WC 40 / WW 400."""
    arr = ramp()
    img = read_dicom(make_dicom(tmp_path / 'a.dcm', arr))
    assert (img == 255).mean() < 0.01 and 100 < img.mean() < 155


@pytest.mark.parametrize('ts', [uid.ExplicitVRLittleEndian, uid.JPEG2000Lossless])
def test_monochrome1_inverted(tmp_path, ts):
    arr = ramp()
    m2 = read_dicom(make_dicom(tmp_path / 'm2.dcm', arr, transfer_syntax=ts, WindowCenter=2047.5,
                               WindowWidth=4095), out_dtype='float32')
    m1 = read_dicom(make_dicom(tmp_path / 'm1.dcm', arr, transfer_syntax=ts,
                               photometric='MONOCHROME1', WindowCenter=2047.5, WindowWidth=4095),
                    out_dtype='float32')
    np.testing.assert_allclose(m1, 1 - m2, atol=1e-6)


@pytest.mark.parametrize('bits,dtype,ts', [
    (8, np.uint8, uid.ExplicitVRLittleEndian),
    (8, np.uint8, uid.RLELossless),
    (10, np.uint16, uid.JPEG2000Lossless),
    (12, np.uint16, uid.RLELossless),
    (14, np.uint16, uid.ExplicitVRLittleEndian),
    (16, np.uint16, uid.JPEG2000Lossless),
    (16, np.int16, uid.ExplicitVRLittleEndian),
])
def test_bit_depths(tmp_path, bits, dtype, ts):
    rng = np.random.default_rng(bits)
    if dtype == np.int16:
        arr = rng.integers(-2000, 2000, size=(64, 48)).astype(dtype)
    else:
        arr = rng.integers(0, 2**bits, size=(64, 48)).astype(dtype)
    path = make_dicom(tmp_path / 'a.dcm', arr, bits_stored=bits, transfer_syntax=ts)
    out = read_dicom(path, out_dtype='float32').astype(np.float64)
    x = arr.astype(np.float64)
    np.testing.assert_allclose(out, (x - x.min()) / (x.max() - x.min()), atol=1e-5)
    assert read_dicom_shape(path) == (64, 48)


def test_j2k_reduced_resolution_fast_path(tmp_path):
    yy, xx = np.mgrid[0:256, 0:128]
    arr = (2000 + 1500 * np.sin(xx / 20.0) * np.cos(yy / 30.0)).astype(np.uint16)
    path = make_dicom(tmp_path / 'a.dcm', arr, transfer_syntax=uid.JPEG2000Lossless,
                      WindowCenter=2047.5, WindowWidth=4095)
    full = load_dicom(path)
    assert full.reduce_level == 0 and full.image.shape == (256, 128)
    fast = load_dicom(path, min_long_side=100)
    assert fast.reduce_level == 1 and fast.image.shape == (128, 64)
    assert fast.orig_shape == (256, 128)
    import cv2
    ref = cv2.resize(full.image, (64, 128), interpolation=cv2.INTER_AREA)
    assert np.abs(fast.image.astype(int) - ref.astype(int)).mean() < 2.0
    # never below the requested size
    assert load_dicom(path, min_long_side=200).reduce_level == 0
    assert load_dicom(path, min_long_side=64).image.shape == (64, 32)


def test_missing_decoder_names_package(tmp_path):
    from pydicom.pixels import get_decoder
    if get_decoder(uid.JPEGLSLossless).is_available:
        pytest.skip('a JPEG-LS decoder is installed')
    arr = ramp()
    path = tmp_path / 'ls.dcm'
    make_dicom(path, arr)
    import pydicom
    ds = pydicom.dcmread(path)
    ds.PixelData = encapsulate([b'\xff\xd8\xff\xf7' + b'\x00' * 64])
    ds['PixelData'].VR = 'OB'
    ds.file_meta.TransferSyntaxUID = uid.JPEGLSLossless
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(MissingDecoderError, match='pyjpegls'):
        read_dicom(path)


def test_corrupt_files_raise_with_path(tmp_path):
    junk = tmp_path / 'junk.dicom'
    junk.write_bytes(b'not a dicom at all' * 10)
    with pytest.raises(DicomReadError, match='junk.dicom'):
        read_dicom(junk)
    with pytest.raises(DicomReadError, match='not found'):
        read_dicom(tmp_path / 'missing.dicom')
    # a valid header with truncated JPEG 2000 pixel data
    path = make_dicom(tmp_path / 't.dicom', ramp(), transfer_syntax=uid.JPEG2000Lossless)
    import pydicom
    ds = pydicom.dcmread(path)
    from pydicom.encaps import generate_frames
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[:len(frame) // 3]])
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(DicomReadError, match='t.dicom'):
        read_dicom(path)
    # header only, no pixel data
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(DicomReadError, match='no Pixel Data'):
        read_dicom(path)


def test_bad_arguments(tmp_path):
    path = make_dicom(tmp_path / 'a.dcm', ramp())
    with pytest.raises(ValueError):
        read_dicom(path, out_dtype='float64')
    with pytest.raises(ValueError):
        read_dicom(path, fallback='ct')
