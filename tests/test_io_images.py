"""Tests of perceptiq.io.images: decoding, mode conversions, errors, threaded loading, listing, writing.

Every test file is written into tmp_path with Pillow (or tifffile / save_image where Pillow cannot
write the format); expected values come from the stored integers, hand-computed formulas, or an
independent decoder (Pillow, torchvision).
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from perceptiq.errors import DataFileError, InputError
from perceptiq.io.images import (
    IMAGE_EXTENSIONS,
    ImageDecodeError,
    ImageInfo,
    ImageTooLargeError,
    apply_exif_orientation,
    choose_decoder,
    decode_image,
    find_images,
    load_images,
    probe_image,
    read_image,
    save_image,
)
from perceptiq.io.images.decode import _decode_jpeg_batch

# torchvision 0.29 deprecates its image codecs in favour of TorchCodec; perceptiq still uses them for
# 16-bit colour PNG and nvJPEG decoding, and the tests use decode_png as an independent reader.
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")


def rng_u8(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def over(values: np.ndarray, scale: float) -> np.ndarray:
    """Reference scaling: correctly rounded float32 of v / scale."""
    return (values.astype(np.float64) / scale).astype(np.float32)


def nchw(hwc: np.ndarray) -> np.ndarray:
    return hwc.transpose(2, 0, 1)[None] if hwc.ndim == 3 else hwc[None, None]


def jpeg_bytes(img: Image.Image, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kwargs)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------
# 8-bit modes


def test_rgb_png_is_v_over_255(tmp_path: Path) -> None:
    arr = rng_u8((5, 7, 3))
    Image.fromarray(arr).save(tmp_path / "a.png")
    x = read_image(tmp_path / "a.png")
    assert x.shape == (1, 3, 5, 7)
    assert x.dtype == torch.float32
    assert x.is_contiguous()
    np.testing.assert_array_equal(x.numpy(), nchw(over(arr, 255)))


def test_grey_png_repeated_to_rgb_or_kept_grey(tmp_path: Path) -> None:
    arr = rng_u8((4, 6))
    Image.fromarray(arr).save(tmp_path / "g.png")
    rgb = read_image(tmp_path / "g.png")
    grey = read_image(tmp_path / "g.png", channels="grey")
    assert rgb.shape == (1, 3, 4, 6)
    assert grey.shape == (1, 1, 4, 6)
    for c in range(3):
        np.testing.assert_array_equal(rgb[0, c].numpy(), over(arr, 255))
    np.testing.assert_array_equal(grey[0, 0].numpy(), over(arr, 255))


def test_colour_to_grey_is_bt601_luma(tmp_path: Path) -> None:
    arr = rng_u8((6, 5, 3), seed=1)
    Image.fromarray(arr).save(tmp_path / "c.png")
    grey = read_image(tmp_path / "c.png", channels="grey", dtype=torch.float64)
    rgb = arr.astype(np.float64) / 255
    luma = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]  # ITU-R BT.601
    np.testing.assert_allclose(grey[0, 0].numpy(), luma, rtol=0, atol=1e-12)
    pillow_l = np.asarray(Image.fromarray(arr).convert("L"), dtype=np.float64) / 255
    np.testing.assert_allclose(grey[0, 0].numpy(), pillow_l, atol=0.5 / 255 + 1e-9)


def test_rgba_composited_on_white_black_or_dropped(tmp_path: Path) -> None:
    Image.new("RGBA", (3, 2), (200, 100, 50, 128)).save(tmp_path / "t.png")
    a = 128 / 255
    white = read_image(tmp_path / "t.png", dtype=torch.float64)
    # out = a * c + (1 - a) * 1; red: 200/255 * 128/255 + 127/255 = 0.891734...
    expected = [200 / 255 * a + (1 - a), 100 / 255 * a + (1 - a), 50 / 255 * a + (1 - a)]
    np.testing.assert_allclose(white[0, :, 1, 2].numpy(), expected, atol=1e-12)
    assert white[0, 0, 0, 0].item() == pytest.approx(0.8917339484813533, abs=1e-12)
    black = read_image(tmp_path / "t.png", alpha="black", dtype=torch.float64)
    np.testing.assert_allclose(
        black[0, :, 0, 0].numpy(), [200 / 255 * a, 100 / 255 * a, 50 / 255 * a], atol=1e-12
    )
    dropped = read_image(tmp_path / "t.png", alpha="drop")
    np.testing.assert_array_equal(dropped[0, :, 0, 0].numpy(), over(np.array([200, 100, 50]), 255))


def test_la_composited_on_white(tmp_path: Path) -> None:
    Image.new("LA", (2, 2), (100, 64)).save(tmp_path / "la.png")
    x = read_image(tmp_path / "la.png", dtype=torch.float64)
    a = 64 / 255
    assert x.shape == (1, 3, 2, 2)
    np.testing.assert_allclose(x.numpy(), 100 / 255 * a + (1 - a), atol=1e-12)
    grey = read_image(tmp_path / "la.png", channels="grey", alpha="drop", dtype=torch.float64)
    np.testing.assert_allclose(grey.numpy(), 100 / 255, atol=1e-12)


def test_palette_expanded_and_transparent_entry_composited(tmp_path: Path) -> None:
    palette = [10, 20, 30, 255, 0, 0, 0, 128, 255]
    img = Image.new("P", (3, 1))
    img.putpalette(palette + [0] * (768 - len(palette)))
    img.putdata([0, 1, 2])
    img.save(tmp_path / "p.png")
    x = read_image(tmp_path / "p.png")
    np.testing.assert_array_equal(x[0].numpy().reshape(3, 3).T, over(np.array(palette).reshape(3, 3), 255))
    img.save(tmp_path / "pt.png", transparency=1)
    y = read_image(tmp_path / "pt.png")
    np.testing.assert_array_equal(y[0, :, 0, 1].numpy(), [1.0, 1.0, 1.0])  # fully transparent -> white
    np.testing.assert_array_equal(y[0, :, 0, 2].numpy(), over(np.array([0, 128, 255]), 255))


def test_bilevel_image(tmp_path: Path) -> None:
    img = Image.new("1", (4, 2), 0)
    img.putpixel((1, 0), 1)
    img.save(tmp_path / "b.png")
    x = read_image(tmp_path / "b.png", channels="grey")
    assert x[0, 0].tolist() == [[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]


def test_one_pixel_image(tmp_path: Path) -> None:
    Image.new("RGB", (1, 1), (0, 51, 255)).save(tmp_path / "one.png")
    x = read_image(tmp_path / "one.png")
    assert x.shape == (1, 3, 1, 1)
    np.testing.assert_array_equal(x.flatten().numpy(), over(np.array([0, 51, 255]), 255))


def test_cmyk_jpeg_and_tiff(tmp_path: Path) -> None:
    # Solid CMYK (0, 255, 255, 0) is pure red; JPEG loss on a flat area is a few levels at most.
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "red.jpg", quality=95)
    assert probe_image(tmp_path / "red.jpg").mode == "CMYK"
    x = read_image(tmp_path / "red.jpg")
    np.testing.assert_allclose(x[0, :, 8, 8].numpy(), [1.0, 0.0, 0.0], atol=3 / 255)
    # lossless CMYK TIFF against the naive formula R = 255 (1 - C)(1 - K), G = ..., B = ...
    cmyk = (51, 102, 0, 64)
    Image.new("CMYK", (2, 2), cmyk).save(tmp_path / "c.tif")
    y = read_image(tmp_path / "c.tif", dtype=torch.float64)
    c, m, yy, k = (v / 255 for v in cmyk)
    expected = [(1 - c) * (1 - k), (1 - m) * (1 - k), (1 - yy) * (1 - k)]
    np.testing.assert_allclose(y[0, :, 0, 0].numpy(), expected, atol=1 / 255)


# ----------------------------------------------------------------------------------------------
# 16-bit, 32-bit integer and float data


def test_16bit_grey_png_is_exactly_v_over_65535(tmp_path: Path) -> None:
    values = np.array([[0, 1, 255, 256], [32767, 32768, 65534, 65535], [12345, 54321, 7, 40000]], np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode == "I;16"
    x = read_image(tmp_path / "g16.png", channels="grey")
    np.testing.assert_array_equal(x[0, 0].numpy(), over(values, 65535))
    x64 = read_image(tmp_path / "g16.png", channels="grey", dtype=torch.float64)
    np.testing.assert_array_equal(x64[0, 0].numpy(), values / 65535.0)
    rgb = read_image(tmp_path / "g16.png")
    assert rgb.shape == (1, 3, 3, 4)
    np.testing.assert_array_equal(rgb[0, 2].numpy(), over(values, 65535))


def test_16bit_grey_tiff(tmp_path: Path) -> None:
    values = np.arange(0, 65536, 4369, dtype=np.uint16).reshape(4, 4)
    Image.fromarray(values).save(tmp_path / "g16.tif")
    x = read_image(tmp_path / "g16.tif", channels="grey")
    np.testing.assert_array_equal(x[0, 0].numpy(), over(values, 65535))


def test_16bit_colour_png_keeps_16_bits(tmp_path: Path) -> None:
    values = np.random.default_rng(2).integers(0, 65536, size=(5, 4, 4), dtype=np.uint16)
    values[0, 0] = [1, 258, 65535, 32768]
    save_image(torch.from_numpy(values.transpose(2, 0, 1) / 65535.0), tmp_path / "c16.png", bits=16)
    assert probe_image(tmp_path / "c16.png").bit_depth == 16
    x = read_image(tmp_path / "c16.png", alpha="drop")
    np.testing.assert_array_equal(x.numpy(), nchw(over(values[..., :3], 65535)))
    white = read_image(tmp_path / "c16.png", dtype=torch.float64)
    a = values[..., 3:].astype(np.float64) / 65535
    expected = values[..., :3] / 65535.0 * a + (1 - a)
    np.testing.assert_allclose(white.numpy(), nchw(expected), atol=1e-12)


def test_16bit_rgb_tiff_keeps_16_bits(tmp_path: Path) -> None:
    tifffile = pytest.importorskip("tifffile", reason="tifffile is the optional 16-bit colour TIFF decoder")
    values = np.random.default_rng(3).integers(0, 65536, size=(3, 5, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "c16.tif", values, photometric="rgb")
    assert Image.open(tmp_path / "c16.tif").mode == "RGB"  # Pillow alone would keep 8 bits
    x = read_image(tmp_path / "c16.tif")
    np.testing.assert_array_equal(x.numpy(), nchw(over(values, 65535)))


def test_16bit_pgm_mode_i(tmp_path: Path) -> None:
    values = np.array([0, 500, 65535], dtype=">u2")
    (tmp_path / "a.pgm").write_bytes(b"P5 3 1 65535\n" + values.tobytes())
    assert probe_image(tmp_path / "a.pgm").mode == "I"
    x = read_image(tmp_path / "a.pgm", channels="grey")
    np.testing.assert_array_equal(x[0, 0, 0].numpy(), over(values.astype(np.int64), 65535))


def test_mode_i_outside_16_bits_raises(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0, 70000]], dtype=np.int32)).save(tmp_path / "i32.tif")
    with pytest.raises(ImageDecodeError, match=r"i32\.tif.*\[0, 70000\]"):
        read_image(tmp_path / "i32.tif")


def test_float_tiff_taken_as_is_and_checked(tmp_path: Path) -> None:
    values = np.array([[0.0, 0.25, 1.0], [0.125, 0.5, 0.75]], dtype=np.float32)
    Image.fromarray(values).save(tmp_path / "f.tif")
    assert probe_image(tmp_path / "f.tif").mode == "F"
    np.testing.assert_array_equal(read_image(tmp_path / "f.tif", channels="grey")[0, 0].numpy(), values)
    Image.fromarray(values * 255).save(tmp_path / "f255.tif")
    with pytest.raises(ImageDecodeError, match=r"expected values in \[0, 1\]"):
        read_image(tmp_path / "f255.tif")
    values[0, 0] = np.nan
    Image.fromarray(values).save(tmp_path / "nan.tif")
    with pytest.raises(ImageDecodeError, match="NaN"):
        read_image(tmp_path / "nan.tif")


# ----------------------------------------------------------------------------------------------
# EXIF orientation


def marked_image(width: int = 40, height: int = 20) -> Image.Image:
    img = Image.new("RGB", (width, height), (0, 0, 0))
    img.paste((255, 0, 0), (0, 0, 6, 6))  # red block in the stored top-left corner
    return img


def test_exif_orientation_6_rotates_clockwise(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    marked_image().save(tmp_path / "rot.jpg", exif=exif.tobytes(), quality=95)
    info = probe_image(tmp_path / "rot.jpg")
    assert (info.width, info.height, info.orientation) == (40, 20, 6)
    assert info.display_size == (40, 20)
    x = read_image(tmp_path / "rot.jpg")
    assert x.shape == (1, 3, 40, 20)  # transposed
    # a 90-degree clockwise turn moves the stored top-left corner to the top-right
    assert x[0, 0, 2, 17].item() > 0.9
    assert x[0, 1, 2, 17].item() < 0.1
    assert x[0, 0, 2, 2].item() < 0.1


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow_exif_transpose(tmp_path: Path, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    Image.fromarray(rng_u8((7, 11, 3))).save(path, exif=exif.tobytes(), quality=100)
    reference = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    np.testing.assert_array_equal(read_image(path).numpy(), nchw(over(reference, 255)))


def test_exif_orientation_in_png_header(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8
    arr = rng_u8((4, 6, 3))
    Image.fromarray(arr).save(tmp_path / "o8.png", exif=exif.tobytes())
    x = read_image(tmp_path / "o8.png")
    np.testing.assert_array_equal(x.numpy(), nchw(over(np.rot90(arr, 1, axes=(0, 1)), 255)))


def test_apply_exif_orientation_on_any_leading_dims() -> None:
    x = torch.arange(6).reshape(1, 1, 2, 3)
    assert apply_exif_orientation(x, 6)[0, 0].tolist() == [[3, 0], [4, 1], [5, 2]]
    assert apply_exif_orientation(x, 8)[0, 0].tolist() == [[2, 5], [1, 4], [0, 3]]
    assert apply_exif_orientation(x, 9) is x


# ----------------------------------------------------------------------------------------------
# broken files and the decompression-bomb guard


def test_truncated_jpeg(tmp_path: Path) -> None:
    data = jpeg_bytes(Image.fromarray(rng_u8((64, 64, 3))))
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageDecodeError, match=r"cut\.jpg: cannot decode image") as err:
        read_image(tmp_path / "cut.jpg")
    assert isinstance(err.value, DataFileError)
    assert err.value.path == str(tmp_path / "cut.jpg")


def test_truncated_png(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(rng_u8((64, 64, 3))).save(buf, "PNG")
    (tmp_path / "cut.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    assert probe_image(tmp_path / "cut.png").width == 64  # the header is intact
    with pytest.raises(ImageDecodeError, match=r"cut\.png: cannot decode image.*truncated"):
        read_image(tmp_path / "cut.png")


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("empty.png", b"", "file is empty"),
        ("text.png", b"this is not a PNG\n", "not a recognised image format"),
        ("garbage.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 40, "not a recognised image format"),
    ],
)
def test_unreadable_files_raise_data_file_error(
    tmp_path: Path, name: str, content: bytes, problem: str
) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataFileError, match=f"{name}: {problem}"):
        read_image(tmp_path / name)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError, match=r"nope\.png: file not found"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageDecodeError, match="is a directory"):
        read_image(tmp_path)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature + IHDR (8-bit RGB) + IEND: a header claiming a size, with no pixel data."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_bomb_guard_limit_is_explicit(tmp_path: Path) -> None:
    Image.new("RGB", (100, 50)).save(tmp_path / "a.png")
    assert read_image(tmp_path / "a.png", max_pixels=5000).shape == (1, 3, 50, 100)
    with pytest.raises(ImageTooLargeError, match=r"a\.png: 100x50 = 5000 pixels exceeds max_pixels=4999"):
        read_image(tmp_path / "a.png", max_pixels=4999)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_bomb_guard_checks_header_before_decoding(tmp_path: Path) -> None:
    (tmp_path / "bomb.png").write_bytes(png_header_only(12000, 12000))
    assert probe_image(tmp_path / "bomb.png", max_pixels=None).width == 12000  # header read, no decoding
    with pytest.raises(ImageTooLargeError, match=r"bomb\.png: 12000x12000"):
        read_image(tmp_path / "bomb.png", max_pixels=10**6)
    with pytest.raises(ImageDecodeError) as err:  # allowed size: fails only later, on the missing data
        read_image(tmp_path / "bomb.png", max_pixels=None)
    assert not isinstance(err.value, ImageTooLargeError)
    (tmp_path / "huge.png").write_bytes(png_header_only(30000, 30000))
    with pytest.raises(ImageTooLargeError, match=r"huge\.png: exceeds Pillow's process-wide limit"):
        read_image(tmp_path / "huge.png", max_pixels=None)


# ----------------------------------------------------------------------------------------------
# threaded loader, decoder choice, GPU JPEG


def make_batch(tmp_path: Path) -> tuple[list[Path], dict[int, np.ndarray]]:
    paths: list[Path] = []
    good: dict[int, np.ndarray] = {}
    for i in range(9):
        if i in (2, 6):
            p = tmp_path / f"broken{i}.png"
            p.write_bytes(b"" if i == 2 else b"not an image")
        elif i == 4:
            p = tmp_path / "missing.png"
        else:
            arr = rng_u8((8 + i, 10, 3), seed=i)
            p = tmp_path / f"img{i}.png"
            Image.fromarray(arr).save(p)
            good[i] = arr
        paths.append(p)
    return paths, good


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_load_images_keeps_order_and_reports_broken_items(tmp_path: Path, workers: int) -> None:
    paths, good = make_batch(tmp_path)
    results = list(load_images(paths, workers=workers, prefetch=2))
    assert [r.index for r in results] == list(range(9))
    assert [r.path for r in results] == paths
    assert [r.ok for r in results] == [i in good for i in range(9)]
    for r in results:
        if r.ok:
            assert r.image is not None
            np.testing.assert_array_equal(r.image.numpy(), nchw(over(good[r.index], 255)))
        else:
            assert r.image is None
            assert isinstance(r.error, DataFileError)
            assert r.error.path == str(paths[r.index])
    assert "file is empty" in str(results[2].error)
    assert "file not found" in str(results[4].error)


def test_load_images_reads_ahead_a_bounded_number(tmp_path: Path) -> None:
    paths, _ = make_batch(tmp_path)
    taken: list[int] = []

    def source():
        for i, p in enumerate(paths):
            taken.append(i)
            yield p

    it = load_images(source(), workers=2, prefetch=3)
    first = next(it)
    assert first.index == 0
    assert len(taken) <= 4
    assert len(list(it)) == 8


def test_load_images_rejects_bad_options() -> None:
    with pytest.raises(InputError, match="workers"):
        load_images([], workers=-1)
    with pytest.raises(InputError, match="channels"):
        read_image("x.png", channels="rgba")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="alpha"):
        load_images([], alpha="grey")  # type: ignore[arg-type]


def header(fmt: str, mode: str, bit_depth: int = 8) -> ImageInfo:
    return ImageInfo(fmt, mode, 64, 48, 1, bit_depth)


def test_choose_decoder_selection_logic() -> None:
    cuda = torch.device("cuda")
    assert choose_decoder(header("JPEG", "RGB"), cuda, cuda_jpeg=True) == "torchvision_jpeg"
    assert choose_decoder(header("JPEG", "L"), "cuda:1", cuda_jpeg=True) == "torchvision_jpeg"
    assert choose_decoder(header("MPO", "RGB"), cuda, cuda_jpeg=True) == "torchvision_jpeg"
    assert choose_decoder(header("JPEG", "RGB"), cuda, cuda_jpeg=False) == "pillow"
    assert choose_decoder(header("JPEG", "RGB"), "cpu", cuda_jpeg=True) == "pillow"
    assert choose_decoder(header("JPEG", "CMYK"), cuda, cuda_jpeg=True) == "pillow"
    assert choose_decoder(header("PNG", "RGB"), cuda, cuda_jpeg=True) == "pillow"
    assert choose_decoder(header("PNG", "RGB", 16), "cpu", cuda_jpeg=False) == "png16"
    assert choose_decoder(header("PNG", "LA", 16), "cpu", cuda_jpeg=False) == "png16"
    assert choose_decoder(header("PNG", "I;16", 16), "cpu", cuda_jpeg=False) == "pillow"
    assert choose_decoder(header("TIFF", "RGB", 16), "cpu", cuda_jpeg=False) == "tiff16"
    assert choose_decoder(header("TIFF", "I;16", 16), "cpu", cuda_jpeg=False) == "pillow"


def test_torchvision_jpeg_batch_decoder_matches_pillow_on_cpu() -> None:
    colour = jpeg_bytes(Image.fromarray(rng_u8((21, 30, 3), seed=5)), quality=90)
    grey = jpeg_bytes(Image.fromarray(rng_u8((9, 13), seed=6)), quality=90)
    out = _decode_jpeg_batch([grey, colour, colour], ["L", "RGB", "RGB"], torch.device("cpu"))
    assert [tuple(t.shape) for t in out] == [(1, 9, 13), (3, 21, 30), (3, 21, 30)]
    ref_colour = np.asarray(Image.open(io.BytesIO(colour))).transpose(2, 0, 1).astype(int)
    ref_grey = np.asarray(Image.open(io.BytesIO(grey)))[None].astype(int)
    assert np.abs(out[1].numpy().astype(int) - ref_colour).max() <= 1
    assert np.abs(out[0].numpy().astype(int) - ref_grey).max() <= 1


def test_gpu_batch_path_keeps_order_and_falls_back_per_file(tmp_path: Path) -> None:
    # The batched nvJPEG branch of load_images, run with torchvision's CPU decoder: the same code
    # orders the results, and when the batch call fails, decodes each file again to report its error.
    from perceptiq.io.images import load as mod

    good = [rng_u8((10 + i, 12, 3), seed=i) for i in range(3)]
    datas = [jpeg_bytes(Image.fromarray(a), quality=95) for a in good]
    broken = datas[0][:-100]  # header intact, scan data cut
    opts = mod._options("rgb", "white", None, torch.float32, "cpu", True)
    items: list = []
    for i, data in enumerate([datas[0], broken, datas[1], datas[2]]):
        info = mod._open(data, f"f{i}.jpg", None)[1]
        items.append(mod._Pending(i, Path(f"f{i}.jpg"), data, info))
    done_first = mod.LoadedImage(9, Path("x.png"), torch.zeros(1, 3, 1, 1), None)
    results = mod._resolve_pending([done_first, *items], opts)
    assert [r.index for r in results] == [9, 0, 1, 2, 3]
    assert [r.ok for r in results] == [True, True, False, True, True]
    assert "f1.jpg: cannot decode image" in str(results[2].error)
    for r, data in zip([results[1], results[3], results[4]], datas, strict=True):
        reference = np.asarray(Image.open(io.BytesIO(data)))
        assert r.image is not None
        np.testing.assert_array_equal(r.image.numpy(), nchw(over(reference, 255)))
    clean = mod._resolve_pending([items[0], items[2]], opts)  # one batched torchvision call
    ref0 = np.asarray(Image.open(io.BytesIO(datas[0]))).transpose(2, 0, 1).astype(np.float64) / 255
    assert clean[0].image is not None
    assert np.abs(clean[0].image[0].numpy() - ref0).max() <= 1 / 255 + 1e-6


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device for nvJPEG decoding")
def test_cuda_jpeg_decode_matches_pillow(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    arr = rng_u8((24, 32, 3), seed=7)
    Image.fromarray(arr).save(tmp_path / "a.jpg", exif=exif.tobytes(), quality=95)
    cpu = read_image(tmp_path / "a.jpg")
    gpu = read_image(tmp_path / "a.jpg", device="cuda")
    assert gpu.device.type == "cuda"
    assert gpu.shape == cpu.shape == (1, 3, 32, 24)
    assert (gpu.cpu() - cpu).abs().max().item() <= 3 / 255
    batch = list(load_images([tmp_path / "a.jpg", tmp_path / "none.jpg", tmp_path / "a.jpg"], device="cuda"))
    assert [r.ok for r in batch] == [True, False, True]
    assert batch[0].image is not None
    assert torch.equal(batch[0].image, gpu)


def test_cuda_device_without_cuda_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    Image.new("RGB", (4, 4)).save(tmp_path / "a.jpg")
    with pytest.raises(InputError, match="CUDA is not available"):
        read_image(tmp_path / "a.jpg", device="cuda")


def test_decode_image_from_bytes() -> None:
    arr = rng_u8((3, 4, 3))
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    np.testing.assert_array_equal(decode_image(buf.getvalue()).numpy(), nchw(over(arr, 255)))
    with pytest.raises(ImageDecodeError, match="upload.png: not a recognised image format"):
        decode_image(b"hello", name="upload.png")


# ----------------------------------------------------------------------------------------------
# listing and writing


def test_find_images_recursive_sorted_and_filtered(tmp_path: Path) -> None:
    for rel in [
        "b.png",
        "a.JPG",
        "notes.txt",
        "sub/c.webp",
        "sub/deep/d.tif",
        ".hidden.png",
        "._a.jpg",
        ".git/x.png",
    ]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    names = [p.relative_to(tmp_path).as_posix() for p in find_images(tmp_path)]
    assert names == ["a.JPG", "b.png", "sub/c.webp", "sub/deep/d.tif"]
    assert [p.name for p in find_images(tmp_path, recursive=False)] == ["a.JPG", "b.png"]
    assert [p.name for p in find_images([tmp_path / "notes.txt", tmp_path / "sub"], extensions=[".tif"])] == [
        "notes.txt",
        "d.tif",
    ]
    with_hidden = find_images(tmp_path, include_hidden=True)
    assert len(with_hidden) == 7
    assert find_images([tmp_path / "b.png", tmp_path]) == find_images(tmp_path)[1:2] + [
        p for p in find_images(tmp_path) if p.name != "b.png"
    ]
    with pytest.raises(DataFileError, match="no such file or folder"):
        find_images(tmp_path / "absent")
    assert {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"} <= IMAGE_EXTENSIONS


def test_save_image_8bit_roundtrip(tmp_path: Path) -> None:
    x = torch.rand(1, 3, 6, 5, generator=torch.Generator().manual_seed(0))
    x[0, 0, 0, 0] = 1.7  # clipped to 1
    save_image(x, tmp_path / "o.png")
    stored = np.asarray(Image.open(tmp_path / "o.png"))
    expected = np.rint(np.clip(x[0].numpy().transpose(1, 2, 0).astype(np.float64), 0, 1) * 255)
    np.testing.assert_array_equal(stored, expected.astype(np.uint8))
    save_image(x[0, :1], tmp_path / "g.png")
    assert Image.open(tmp_path / "g.png").mode == "L"
    save_image(x, tmp_path / "o.jpg")
    assert Image.open(tmp_path / "o.jpg").format == "JPEG"


def test_save_image_16bit_read_by_independent_decoders(tmp_path: Path) -> None:
    from torchvision.io import ImageReadMode, decode_png, read_file

    values = np.random.default_rng(1).integers(0, 65536, size=(3, 4, 5), dtype=np.uint16)
    save_image(torch.from_numpy(values / 65535.0), tmp_path / "c.png", bits=16)
    stored = decode_png(read_file(str(tmp_path / "c.png")), ImageReadMode.UNCHANGED)
    assert stored.dtype == torch.uint16
    np.testing.assert_array_equal(stored.numpy(), values)
    save_image(torch.from_numpy(values[:1] / 65535.0), tmp_path / "g.png", bits=16)
    grey = Image.open(tmp_path / "g.png")
    assert grey.mode == "I;16"
    np.testing.assert_array_equal(np.asarray(grey), values[0])


def test_save_image_errors(tmp_path: Path) -> None:
    x = torch.rand(3, 4, 4)
    with pytest.raises(InputError, match="PNG"):
        save_image(x, tmp_path / "a.jpg", bits=16)
    with pytest.raises(InputError, match="NaN"):
        save_image(torch.full((3, 2, 2), float("nan")), tmp_path / "a.png")
    with pytest.raises(InputError, match="batch of 2"):
        save_image(torch.rand(2, 3, 4, 4), tmp_path / "a.png")
    with pytest.raises(DataFileError, match="cannot write"):
        save_image(x, tmp_path / "no" / "such" / "dir.png")
    with pytest.raises(DataFileError, match="cannot write"):
        save_image(x, tmp_path / "a.unknownext")
