"""The rendering pipeline on pydicom's bundled files, checked against numpy computations."""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate

from dicom_tools.rendering import RenderingError, Viewport, Window, encode, render, render_frame
from tests.dicom_tools.part10 import bundled


def _bytes(name: str) -> bytes:
    return bundled(name).read_bytes()


def _dataset(name: str) -> pydicom.Dataset:
    return pydicom.dcmread(bundled(name))


def _saved(ds: pydicom.Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _ct_values() -> npt.NDArray[np.float64]:
    """CT_small in Hounsfield units, computed here from the stored values."""
    ds = _dataset("CT_small.dcm")
    stored = ds.pixel_array.astype(np.float64)
    return stored * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def _linear(x: npt.NDArray[np.float64], c: float, w: float) -> npt.NDArray[np.uint8]:
    """PS3.3 C.11.2.1.2.1 linear window to 0..255, written out case by case."""
    y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255
    y = np.where(x <= c - 0.5 - (w - 1) / 2, 0, np.where(x > c - 0.5 + (w - 1) / 2, 255, y))
    return np.rint(y).astype(np.uint8)


def test_ct_modality_lut_then_explicit_windows() -> None:
    hu = _ct_values()
    soft = render_frame(_bytes("CT_small.dcm"), window=Window(40, 400))
    bone = render_frame(_bytes("CT_small.dcm"), window=Window(300, 1500))
    assert np.array_equal(soft, _linear(hu, 40, 400))
    assert np.array_equal(bone, _linear(hu, 300, 1500))
    assert not np.array_equal(soft, bone)
    for row, column in [(0, 0), (64, 64), (100, 30)]:
        assert soft[row, column] == _linear(hu[row : row + 1, column : column + 1], 40, 400)[0, 0]
    assert soft.dtype == np.uint8
    assert soft.shape == (128, 128)


def test_ct_without_a_stored_window_spans_its_minimum_to_maximum() -> None:
    hu = _ct_values()
    expected = np.rint((hu - hu.min()) / (hu.max() - hu.min()) * 255).astype(np.uint8)
    assert np.array_equal(render_frame(_bytes("CT_small.dcm")), expected)


def test_the_files_own_window_is_used_when_none_is_given() -> None:
    ds = _dataset("MR_small.dcm")
    expected = _linear(ds.pixel_array.astype(np.float64), 600, 1600)
    assert (float(ds.WindowCenter), float(ds.WindowWidth)) == (600, 1600)
    assert np.array_equal(render_frame(_bytes("MR_small.dcm")), expected)


def test_window_functions_follow_ps3_3() -> None:
    x = np.array([-161.0, -160.0, -159.5, 39.5, 239.0, 239.5, 1000.0])
    assert list(Window(40, 400).apply(x)[[0, 1, 4, 5, 6]]) == [0, 0, 255, 255, 255]
    assert Window(40, 400).apply(x)[3] == pytest.approx(127.5)
    exact = Window(40, 400, "linear_exact").apply(np.array([-160.0, 40.0, 240.0]))
    assert list(exact) == [0, 127.5, 255]
    sigmoid = Window(40, 400, "sigmoid").apply(np.array([40.0, 140.0]))
    assert sigmoid[0] == pytest.approx(127.5)
    assert sigmoid[1] == pytest.approx(255 / (1 + np.exp(-4 * 100 / 400)))
    assert list(Window(10, 1).apply(np.array([9.5, 9.6]))) == [0, 255]


@pytest.mark.parametrize(
    ("center", "width", "function"),
    [(40, 0.5, "linear"), (40, 0, "sigmoid"), (float("nan"), 10, "linear")],
)
def test_unusable_windows_are_refused(center: float, width: float, function: str) -> None:
    with pytest.raises(RenderingError) as caught:
        Window(center, width, function)  # type: ignore[arg-type]
    assert caught.value.reason == "invalid_parameter"


def test_monochrome1_is_inverted() -> None:
    ds = _dataset("CT_small.dcm")
    ds.PhotometricInterpretation = "MONOCHROME1"
    window = Window(40, 400)
    inverted = render_frame(_saved(ds), window=window)
    assert np.array_equal(inverted, 255 - render_frame(_bytes("CT_small.dcm"), window=window))


def test_rescale_in_functional_groups_is_applied_per_frame() -> None:
    ds = _dataset("CT_small.dcm")
    del ds.RescaleSlope, ds.RescaleIntercept
    transform = Dataset()
    transform.RescaleSlope, transform.RescaleIntercept = 2, -2048
    shared = Dataset()
    shared.PixelValueTransformationSequence = [transform]
    ds.SharedFunctionalGroupsSequence = [shared]
    hu = ds.pixel_array.astype(np.float64) * 2 - 2048
    assert np.array_equal(render_frame(_saved(ds), window=Window(0, 2000)), _linear(hu, 0, 2000))


def test_rgb_is_passed_through() -> None:
    expected = _dataset("examples_rgb_color.dcm").pixel_array
    rendered = render_frame(_bytes("examples_rgb_color.dcm"))
    assert rendered.shape == (240, 320, 3)
    assert np.array_equal(rendered, expected)


def test_16_bit_rgb_is_scaled_to_8_bits() -> None:
    assert np.array_equal(
        render_frame(_bytes("SC_rgb_rle_16bit.dcm")), render_frame(_bytes("SC_rgb_rle.dcm"))
    )


@pytest.mark.parametrize(
    ("name", "most"),
    [
        ("SC_ybr_full_422_uncompressed.dcm", 1.0),  # YBR_FULL_422, native
        ("SC_rgb_jpeg_dcmtk.dcm", 1.0),  # YBR_FULL, JPEG baseline
        ("SC_rgb_jpeg_gdcm.dcm", 0.0),  # RGB, JPEG lossless
        ("SC_rgb_gdcm_KY.dcm", 0.0),  # RGB, JPEG 2000
        ("GDCMJ2K_TextGBR.dcm", None),  # YBR_RCT, JPEG 2000: a different picture
    ],
)
def test_ybr_and_compressed_colour_become_rgb(name: str, most: float | None) -> None:
    rendered = render_frame(_bytes(name))
    assert rendered.ndim == 3
    assert rendered.shape[2] == 3
    if most is not None:
        reference = _dataset("SC_rgb_rle.dcm").pixel_array.astype(int)
        assert np.abs(rendered.astype(int) - reference).mean() <= most


def test_palette_colour_goes_through_the_lookup_tables() -> None:
    ds = _dataset("examples_palette.dcm")
    first = int(ds.RedPaletteColorLookupTableDescriptor[1])
    assert int(ds.RedPaletteColorLookupTableDescriptor[2]) == 16
    luts = [
        np.frombuffer(getattr(ds, f"{c}PaletteColorLookupTableData"), "<u2").astype(float)
        for c in ("Red", "Green", "Blue")
    ]
    rendered = render_frame(_bytes("examples_palette.dcm"))
    assert rendered.shape == (350, 800, 3)
    indexes = np.clip(ds.pixel_array.astype(int) - first, 0, len(luts[0]) - 1)
    expected = np.stack([np.rint(lut[indexes] * 255 / 65535) for lut in luts], axis=-1)
    assert np.array_equal(rendered, expected)


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
    ],
)
def test_every_transfer_syntax_renders_the_same_image(name: str) -> None:
    assert np.array_equal(render_frame(_bytes(name)), render_frame(_bytes("MR_small.dcm")))


def test_multi_frame_renders_the_chosen_frame() -> None:
    first = render_frame(_bytes("SC_rgb_rle_2frame.dcm"), frame=1)
    second = render_frame(_bytes("SC_rgb_rle_2frame.dcm"), frame=2)
    assert np.array_equal(first, 255 - second)
    assert np.array_equal(render_frame(_bytes("SC_rgb_rle_2frame.dcm")), first)
    ybr = _bytes("examples_ybr_color.dcm")
    assert not np.array_equal(render_frame(ybr, frame=1), render_frame(ybr, frame=30))
    for frame in (0, 31):
        with pytest.raises(RenderingError) as caught:
            render_frame(ybr, frame=frame)
        assert caught.value.reason == "no_such_frame"


def test_the_representative_frame_is_the_default() -> None:
    ds = _dataset("SC_rgb_rle_2frame.dcm")
    ds.RepresentativeFrameNumber = 2
    assert np.array_equal(
        render_frame(_saved(ds)), render_frame(_bytes("SC_rgb_rle_2frame.dcm"), frame=2)
    )


def test_jpeg_2000_grayscale_renders_with_its_window() -> None:
    rendered = render_frame(_bytes("693_J2KI.dcm"))
    assert rendered.shape == (512, 512)
    assert rendered.min() == 0
    assert rendered.max() == 255


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("waveform_ecg.dcm", "no_pixel_data"),
        ("reportsi.dcm", "no_pixel_data"),
        ("rtplan.dcm", "no_pixel_data"),
        ("no_meta.dcm", "not_dicom"),
        ("MR_truncated.dcm", "undecodable"),
    ],
)
def test_objects_without_a_renderable_image_raise_a_reason(name: str, reason: str) -> None:
    with pytest.raises(RenderingError) as caught:
        render(_bytes(name))
    assert caught.value.reason == reason
    assert caught.value.message


def test_bytes_that_are_not_dicom_are_refused() -> None:
    with pytest.raises(RenderingError) as caught:
        render(b"\x89PNG not a DICOM file")
    assert caught.value.reason == "not_dicom"


def test_ecg_names_its_sop_class() -> None:
    with pytest.raises(RenderingError, match="12-lead ECG Waveform Storage has no pixel data"):
        render(_bytes("waveform_ecg.dcm"))


def test_a_transfer_syntax_without_a_decoder_is_refused() -> None:
    ds = _dataset("CT_small.dcm")
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2
    ds.PixelData = encapsulate([ds.PixelData])
    with pytest.raises(RenderingError) as caught:
        render(_saved(ds))
    assert caught.value.reason == "unsupported_transfer_syntax"
    assert "MPEG2" in caught.value.message


def test_png_is_lossless_and_jpeg_decodes() -> None:
    pixels = render_frame(_bytes("CT_small.dcm"), window=Window(40, 400))
    png = Image.open(
        io.BytesIO(render(_bytes("CT_small.dcm"), window=Window(40, 400), image_format="png"))
    )
    assert (png.format, png.mode, png.size) == ("PNG", "L", (128, 128))
    assert np.array_equal(np.asarray(png), pixels)
    jpeg = Image.open(io.BytesIO(render(_bytes("SC_rgb_rle.dcm"), quality=75)))
    assert (jpeg.format, jpeg.mode, jpeg.size) == ("JPEG", "RGB", (100, 100))


def test_viewport_keeps_the_aspect_ratio_and_never_enlarges() -> None:
    tall = render(_bytes("JPEG2000.dcm"), viewport=Viewport(128, 128), image_format="png")
    assert Image.open(io.BytesIO(tall)).size == (32, 128)
    small = render(_bytes("CT_small.dcm"), viewport=Viewport(1000, 500), image_format="png")
    assert Image.open(io.BytesIO(small)).size == (128, 128)
    wide = encode(np.zeros((10, 40), np.uint8), viewport=Viewport(20, 20), image_format="png")
    assert Image.open(io.BytesIO(wide)).size == (20, 5)


@pytest.mark.parametrize("size", [(0, 10), (10, 0), (10, 100_000)])
def test_unusable_viewports_and_qualities_are_refused(size: tuple[int, int]) -> None:
    with pytest.raises(RenderingError) as caught:
        Viewport(*size)
    assert caught.value.reason == "invalid_parameter"
    with pytest.raises(RenderingError):
        encode(np.zeros((2, 2), np.uint8), quality=0)
