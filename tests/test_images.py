"""Image I/O: paths, built-ins and cached URLs; every odd format converted to (1, 3, H, W) in [0, 1];
every bad input a one-line TexnetsError; atomic writes; grids. All images are made here with Pillow."""
from __future__ import annotations

import hashlib
import io
import json
import os
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageOps

from texnets.errors import TexnetsError
from texnets.images import (cache_dir, fetch_url, labelled_grid, list_images, load_image, read_image, resize,
                            save_image, save_json, wrap_caption)

H, W = 20, 30

# torchvision 0.29 deprecates its image codecs in favour of TorchCodec; texnets still uses them.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The image decoding and encoding capabilities:DeprecationWarning")


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    """A smooth, asymmetric H×W RGB test card (uint8): orientation mistakes and colour swaps show."""
    y, x = np.mgrid[0:H, 0:W]
    card = np.stack([x * 255 // (W - 1), y * 255 // (H - 1), (x + 2 * y) * 255 // (W - 1 + 2 * (H - 1))], -1)
    card[:3, :3] = [255, 0, 0]  # a red top-left corner
    return card.astype(np.uint8)


def as_tensor(array: np.ndarray) -> torch.Tensor:
    """H×W×3 uint8 -> 3×H×W float in [0, 1]."""
    return torch.from_numpy(np.array(array)).permute(2, 0, 1).float() / 255


def pil_reference(path: Path) -> torch.Tensor:
    with Image.open(path) as im:
        return as_tensor(np.asarray(ImageOps.exif_transpose(im).convert("RGB")))


def check_image(tensor: torch.Tensor, height: int, width: int):
    assert tensor.shape == (1, 3, height, width)
    assert tensor.dtype == torch.float32
    assert tensor.is_contiguous()
    assert 0.0 <= tensor.min().item() and tensor.max().item() <= 1.0


def one_line_error(exc_info, *fragments: str):
    message = str(exc_info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


# --------------------------------------------------------------------------------------------------
# Loading: what works

def test_load_png_exactly(tmp_path, rgb):
    path = tmp_path / "card.png"
    Image.fromarray(rgb).save(path)
    image = load_image(path)
    check_image(image, H, W)
    assert torch.equal(image[0], as_tensor(rgb))
    assert torch.equal(load_image(str(path)), image)


@pytest.mark.parametrize("suffix, exact", [(".bmp", True), (".tif", True), (".gif", False), (".webp", True),
                                           (".jpg", False)])
def test_other_formats(tmp_path, rgb, suffix, exact):
    path = tmp_path / f"card{suffix}"
    options = {"lossless": True} if suffix == ".webp" else {}
    Image.fromarray(rgb).save(path, **options)
    image = load_image(path)
    check_image(image, H, W)
    if exact:
        assert torch.equal(image[0], as_tensor(rgb))
    else:
        assert (image[0] - as_tensor(rgb)).abs().mean() < 0.03
        torch.testing.assert_close(image[0], pil_reference(path), atol=3 / 255, rtol=0)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif"])
def test_grayscale_becomes_three_equal_channels(tmp_path, rgb, suffix):
    gray = rgb[..., 1]
    path = tmp_path / f"gray{suffix}"
    Image.fromarray(gray).save(path)
    image = load_image(path)
    check_image(image, H, W)
    assert torch.equal(image[0, 0], image[0, 1]) and torch.equal(image[0, 1], image[0, 2])
    if suffix != ".jpg":
        assert torch.equal(image[0, 0], torch.from_numpy(gray).float() / 255)


@pytest.mark.parametrize("mode", ["1", "LA"])
def test_bilevel_and_gray_alpha(tmp_path, rgb, mode):
    path = tmp_path / f"odd_{mode}.png"
    Image.fromarray(rgb).convert(mode).save(path)
    image = load_image(path)
    check_image(image, H, W)
    assert torch.equal(image[0], pil_reference(path))


def test_rgba_drops_alpha(tmp_path, rgb):
    alpha = np.linspace(0, 255, H * W).reshape(H, W).astype(np.uint8)
    path = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([rgb, alpha])).save(path)
    image = load_image(path)
    check_image(image, H, W)
    assert torch.equal(image[0], as_tensor(rgb))


def test_palette_png(tmp_path, rgb):
    path = tmp_path / "palette.png"
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(path)
    with Image.open(path) as im:
        assert im.mode == "P"
    image = load_image(path)
    check_image(image, H, W)
    assert torch.equal(image[0], pil_reference(path))
    assert (image[0] - as_tensor(rgb)).abs().mean() < 0.05


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_grayscale(tmp_path, suffix):
    values = (np.arange(H * W).reshape(H, W) * 109).astype(np.uint16)  # up to 65291: uses all 16 bits
    path = tmp_path / f"deep{suffix}"
    Image.fromarray(values).save(path)
    with Image.open(path) as im:
        assert im.mode.startswith("I;16")
    image = load_image(path)
    check_image(image, H, W)
    expected = torch.from_numpy(values.astype(np.float32) / 65535)
    for channel in range(3):
        torch.testing.assert_close(image[0, channel], expected, atol=1 / 510, rtol=0)
    assert image.max().item() > 0.99  # scaled by 65535, not clipped at 255


def test_cmyk_jpeg(tmp_path, rgb):
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(path, quality=95)
    with Image.open(path) as im:
        assert im.mode == "CMYK"
    image = load_image(path)
    check_image(image, H, W)
    # Colours come back, not inverted.
    assert (image[0] - as_tensor(rgb)).abs().mean() < 0.03
    torch.testing.assert_close(image[0], pil_reference(path), atol=3 / 255, rtol=0)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_honoured(tmp_path, rgb, suffix, orientation):
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = orientation
    path = tmp_path / f"rotated{orientation}{suffix}"
    im.save(path, exif=exif, **({"quality": 95} if suffix == ".jpg" else {}))
    image = load_image(path)
    height, width = (W, H) if orientation in (6, 8) else (H, W)
    check_image(image, height, width)
    # 3: rotate 180°, 6: rotate 90° clockwise, 8: rotate 90° counter-clockwise (for display).
    k = {3: 2, 6: -1, 8: 1}[orientation]
    expected = torch.rot90(as_tensor(rgb), k, dims=(1, 2))
    if suffix == ".png":
        assert torch.equal(image[0], expected)
    else:
        assert (image[0] - expected).abs().mean() < 0.03


def test_builtin_images():
    coffee = load_image("builtin:coffee", size=48)
    check_image(coffee, 48, 72)  # skimage's coffee is 400×600
    brick = load_image("builtin:brick", size=32)  # a grayscale built-in
    check_image(brick, 32, 32)
    assert torch.equal(brick[0, 0], brick[0, 2])


def test_unknown_builtin():
    with pytest.raises(TexnetsError) as info:
        load_image("builtin:cofee")
    one_line_error(info, "'cofee'", "coffee", "brick")


# --------------------------------------------------------------------------------------------------
# Resizing

@pytest.fixture
def card_path(tmp_path, rgb) -> Path:
    path = tmp_path / "card.png"
    Image.fromarray(rgb).save(path)
    return path


def no_upsampling_warning(record) -> bool:
    return not any("upsampled" in str(w.message) for w in record)


@pytest.mark.parametrize("size, shape", [(10, (10, 15)), ((8, 12), (8, 12)), ([8, 24], (8, 24)),
                                         ((12,), (12, 18)), (None, (H, W)), (20, (H, W))])
def test_resize_semantics(card_path, size, shape):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        image = load_image(card_path, size=size)
    check_image(image, *shape)
    assert no_upsampling_warning(record)


def test_resize_function_keeps_range():
    image = torch.rand(3, 16, 24)
    out = resize(image, 8)
    assert out.shape == (3, 8, 12) and 0 <= out.min() and out.max() <= 1
    assert resize(image, None) is image


@pytest.mark.parametrize("size, shape", [(40, (40, 60)), ((40, 60), (40, 60)), ((40, 10), (40, 10)),
                                         ((10, 45), (10, 45))])
def test_upsampling_warns(card_path, size, shape):
    with pytest.warns(UserWarning, match="upsampled") as record:
        image = load_image(card_path, size=size, what="style image")
    check_image(image, *shape)
    message = next(str(w.message) for w in record if "upsampled" in str(w.message))
    assert "style image" in message and f"{W}x{H}" in message and "\n" not in message


# --------------------------------------------------------------------------------------------------
# Loading: every bad input is one clear line

def test_missing_file(tmp_path):
    path = tmp_path / "nope.png"
    with pytest.raises(TexnetsError) as info:
        load_image(path)
    one_line_error(info, "not found", str(path))


def test_directory(tmp_path):
    with pytest.raises(TexnetsError) as info:
        load_image(tmp_path)
    one_line_error(info, "directory", str(tmp_path))


@pytest.mark.parametrize("name, content", [("notes.txt", b"just some text\n"), ("fake.png", b"hello world"),
                                           ("fake.jpg", b"\x00" * 100), ("empty.png", b"")])
def test_non_image_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TexnetsError) as info:
        load_image(path)
    one_line_error(info, "not an image", str(path))


@pytest.fixture(scope="module")
def noisy() -> np.ndarray:
    """Noise compresses badly, so truncation lands in the middle of the image data."""
    return (np.random.default_rng(0).random((128, 128, 3)) * 255).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.95])
def test_truncated_image(tmp_path, noisy, suffix, fraction):
    full = tmp_path / f"full{suffix}"
    Image.fromarray(noisy).save(full)
    data = full.read_bytes()
    path = tmp_path / f"truncated{suffix}"
    path.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(TexnetsError) as info:
        load_image(path)
    message = one_line_error(info, str(path))
    assert "truncated" in message.lower() or "corrupt" in message.lower()
    assert len(message) < 400


def test_corrupt_middle_of_png(tmp_path, noisy):
    path = tmp_path / "corrupt.png"
    Image.fromarray(noisy).save(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    with pytest.raises(TexnetsError) as info:
        load_image(path)
    one_line_error(info, str(path))


# --------------------------------------------------------------------------------------------------
# Saving

def test_save_png_round_trips_exactly(tmp_path):
    image = torch.randint(0, 256, (1, 3, 17, 23)).float() / 255
    path = save_image(image, tmp_path / "sub" / "out.png")
    assert path == tmp_path / "sub" / "out.png"
    assert torch.equal(load_image(path), image)
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.png"]  # no temp file left


def test_save_jpeg_and_clamping(tmp_path, rgb):
    image = as_tensor(rgb) * 1.4 - 0.2  # out of range values are clamped
    path = save_image(image, tmp_path / "out.jpg")
    loaded = load_image(path)
    check_image(loaded, H, W)
    assert (loaded[0] - image.clamp(0, 1)).abs().mean() < 0.03


def test_save_unsupported_format(tmp_path):
    with pytest.raises(TexnetsError, match="unsupported output format"):
        save_image(torch.rand(3, 4, 4), tmp_path / "out.gif")
    assert list(tmp_path.iterdir()) == []


def _failing_writer(method):
    """Write half of the data, then fail, as a full disk or a crash would."""
    def write(self, data, *args, **kwargs):
        method(self, data[: len(data) // 2], *args, **kwargs)
        raise OSError(28, "No space left on device (test)")
    return write


def _failing_pil_save(self, fp, *args, **kwargs):
    """Pillow's encoder writes part of the file, then the disk fills up."""
    Path(fp).write_bytes(b"\x89PNG half an image")
    raise OSError(28, "No space left on device (test)")


def test_save_image_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    monkeypatch.setattr(Image.Image, "save", _failing_pil_save)
    with pytest.raises(OSError):
        save_image(torch.rand(3, 8, 8), target)
    assert list(tmp_path.iterdir()) == []  # neither the output nor a temp file

    monkeypatch.undo()
    original = torch.rand(3, 8, 8)
    save_image(original, target)
    before = target.read_bytes()
    monkeypatch.setattr(Image.Image, "save", _failing_pil_save)
    with pytest.raises(OSError):
        save_image(torch.rand(3, 8, 8), target)
    monkeypatch.undo()
    assert target.read_bytes() == before  # the existing file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_save_json_round_trip_and_atomic(tmp_path, monkeypatch):
    path = tmp_path / "report.json"
    data = {"b": 1, "a": [1.5, "x"], "path": tmp_path}
    save_json(data, path)
    text = path.read_text()
    assert json.loads(text) == {"a": [1.5, "x"], "b": 1, "path": str(tmp_path)}
    assert text.index('"a"') < text.index('"b"') and text.endswith("\n")

    monkeypatch.setattr(Path, "write_text", _failing_writer(Path.write_text))
    with pytest.raises(OSError):
        save_json({"c": 3}, path)
    with pytest.raises(OSError):
        save_json({"c": 3}, tmp_path / "new.json")
    monkeypatch.undo()
    assert path.read_text() == text
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


# --------------------------------------------------------------------------------------------------
# URLs and the cache (file:// URLs and a patched urlopen: never the network)

@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("TEXNETS_CACHE", str(root))
    assert cache_dir() == root
    return root


def test_cache_dir_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("TEXNETS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "texnets"


def test_fetch_url_caches(cache, tmp_path, rgb, monkeypatch):
    source = tmp_path / "remote.png"
    Image.fromarray(rgb).save(source)
    url = source.as_uri()
    local = fetch_url(url)
    assert local.is_file() and cache in local.parents and local.name.endswith("remote.png")
    assert local.read_bytes() == source.read_bytes()

    def no_network(*args, **kwargs):
        raise AssertionError("a cached URL must not be downloaded again")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    source.unlink()
    assert fetch_url(url) == local
    assert torch.equal(read_image(local), as_tensor(rgb))


def test_fetch_url_checksum(cache, tmp_path):
    source = tmp_path / "data.bin"
    source.write_bytes(b"texture bytes" * 100)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert fetch_url(source.as_uri(), sha256=digest).read_bytes() == source.read_bytes()
    assert fetch_url(f"{source.as_uri()}#sha256={digest.upper()}").is_file()

    other = tmp_path / "other.bin"
    other.write_bytes(b"something else")
    with pytest.raises(TexnetsError) as info:
        fetch_url(f"{other.as_uri()}#sha256={digest}")
    one_line_error(info, "checksum mismatch", digest)
    downloads = cache / "downloads"
    assert not any(p.name.endswith("other.bin") for p in downloads.iterdir())  # the bad download is gone
    assert not any(p.name.endswith(".tmp") for p in downloads.iterdir())


def test_http_offline_is_one_line(cache, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    url = "https://example.invalid/textures/stone.jpg"
    with pytest.raises(TexnetsError) as info:
        load_image(url)
    one_line_error(info, url, "offline?", "local path")
    assert not (cache / "downloads").exists() or list((cache / "downloads").iterdir()) == []


def test_interrupted_download_leaves_nothing(cache, monkeypatch):
    class Broken(io.BytesIO):
        def read(self, *args):
            raise ConnectionResetError("connection reset (test)")

        def __enter__(self):
            return self

    monkeypatch.setattr(urllib.request, "urlopen", lambda *args, **kwargs: Broken())
    with pytest.raises(TexnetsError, match="offline"):
        fetch_url("http://example.invalid/big.png")
    assert list((cache / "downloads").iterdir()) == []


# --------------------------------------------------------------------------------------------------
# Folders and grids

def test_list_images(tmp_path, rgb):
    (tmp_path / "sub").mkdir()
    Image.fromarray(rgb).save(tmp_path / "b.png")
    Image.fromarray(rgb).save(tmp_path / "sub" / "a.JPG", format="JPEG")
    (tmp_path / "notes.txt").write_text("x")
    assert list_images(tmp_path) == [tmp_path / "b.png", tmp_path / "sub" / "a.JPG"]
    with pytest.raises(TexnetsError, match="not a folder"):
        list_images(tmp_path / "b.png")


def test_labelled_grid():
    first, second = torch.rand(1, 3, 20, 30), torch.rand(3, 10, 10)
    grid = labelled_grid([first, second], ["r1", "p4"])
    # Cells share the tallest height (20) plus a 14 px caption strip (one line); make_grid pads by 2.
    assert grid.shape == (3, 2 + 34 + 2, 2 + 30 + 2 + 30 + 2)
    assert grid.dtype == torch.float32 and 0 <= grid.min() and grid.max() <= 1
    caption = grid[:, 2 + 20:2 + 34, 2:2 + 30]
    assert caption.min() < 0.5 and caption.float().mean() > 0.5  # dark text on white
    column = labelled_grid([first, second], ["a", "b"], columns=1)
    assert column.shape == (3, 2 + 2 * (34 + 2), 2 + 30 + 2)
    with pytest.raises(ValueError):
        labelled_grid([first], ["a", "b"])


def test_long_captions_wrap_instead_of_being_cut_off():
    """Study grids label 64 px cells with layer lists: every character must stay readable."""
    labels = ["gram relu1_1", "meanvar relu1_1,relu2_1,relu3_1,relu4_1", "sw relu1_1,pool1,pool2"]
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    for label in labels:
        lines = wrap_caption(label, lambda text: measure.textlength(text) <= 60)
        assert "".join(lines).replace(" ", "") == label.replace(" ", "")  # nothing dropped
        assert all(measure.textlength(line) <= 60 for line in lines)
    assert wrap_caption("meanvar relu1_1,relu2_1", lambda text: len(text) <= 10) == ["meanvar", "relu1_1,", "relu2_1"]
    assert wrap_caption("abcdefghijkl", lambda text: len(text) <= 5) == ["abcde", "fghij", "kl"]
    one_line = labelled_grid([torch.rand(3, 64, 64)] * 2, ["gram", "sw"])
    wrapped = labelled_grid([torch.rand(3, 64, 64)] * 3, labels)
    assert one_line.shape[-2] == 2 + 64 + 14 + 2
    assert wrapped.shape[-2] == 2 + 64 + 2 + 12 * 5 + 2  # the longest label needs five lines at 64 px


def test_saved_files_get_the_usual_permissions_not_mkstemps_0600(tmp_path):
    path = save_image(torch.rand(3, 8, 8), tmp_path / "perm.png")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
