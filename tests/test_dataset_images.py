"""Safe image loading on real files: photos from scikit-image saved in every mode users' tools produce."""
from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile
from skimage import data

from lib_storyboard.dataset.images import BadImage, load_rgb, probe_image


def _rgb(name: str) -> np.ndarray:
    return getattr(data, name)()


def _png_header_only(path, w: int, h: int) -> None:
    """A valid PNG signature and IHDR declaring w×h, with almost no pixel data (a decompression-bomb header)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))


def _reason(path, **kw) -> str:
    with pytest.raises(BadImage) as ei:
        load_rgb(str(path), **kw)
    with pytest.raises(BadImage) as ep:
        probe_image(str(path), **kw)
    assert ep.value.reason == ei.value.reason  # the scan and the loader agree
    assert str(ei.value) == f"Cannot use the image {path}: {ei.value.reason}."
    assert ei.value.path == str(path)
    return ei.value.reason


def _open_fds_to(path) -> list[str]:
    fd_dir = "/proc/self/fd"
    out = []
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(os.path.join(fd_dir, fd)) == str(path):
                out.append(fd)
        except OSError:
            pass
    return out


def test_rgb_png_is_exact(tmp_path):
    a = _rgb("astronaut")
    p = tmp_path / "a.png"
    Image.fromarray(a).save(p)
    im = load_rgb(str(p))
    assert im.mode == "RGB" and im.size == (512, 512)
    assert np.array_equal(np.asarray(im), a)
    assert probe_image(str(p)) == probe_image(str(p)) and probe_image(str(p)).mode == "RGB"


def test_grayscale_and_bilevel_become_grey_rgb(tmp_path):
    g = _rgb("camera")
    Image.fromarray(g).save(tmp_path / "g.png")
    out = np.asarray(load_rgb(str(tmp_path / "g.png")))
    assert out.shape == (512, 512, 3)
    assert all(np.array_equal(out[..., c], g) for c in range(3))
    Image.fromarray(g).convert("1").save(tmp_path / "b.png")
    assert probe_image(str(tmp_path / "b.png")).mode == "1"
    assert set(np.unique(np.asarray(load_rgb(str(tmp_path / "b.png"))))) == {0, 255}


def test_rgba_transparency_is_composited_on_white(tmp_path):
    a = _rgb("chelsea")  # 451×300
    alpha = np.full(a.shape[:2], 255, np.uint8)
    alpha[:, :200] = 0        # fully transparent: must be pure white, whatever colour the hidden pixels have
    alpha[:, 200:210] = 128   # half transparent: half way to white
    p = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([a, alpha]), "RGBA").save(p)
    assert probe_image(str(p)).mode == "RGBA"
    out = np.asarray(load_rgb(str(p))).astype(int)
    assert (out[:, :200] == 255).all()
    assert np.array_equal(out[:, 210:], a[:, 210:])
    expected = a[:, 200:210].astype(int) * 128 / 255 + 255 * (1 - 128 / 255)
    assert np.abs(out[:, 200:210] - expected).max() <= 1


def test_la_and_palette_transparency_on_white(tmp_path):
    g = _rgb("camera")
    alpha = np.where(np.arange(512)[None, :] < 100, 0, 255).astype(np.uint8).repeat(512, 0)
    Image.fromarray(np.dstack([g, alpha]), "LA").save(tmp_path / "la.png")
    out = np.asarray(load_rgb(str(tmp_path / "la.png")))
    assert (out[:, :100] == 255).all()
    assert np.array_equal(out[:, 100:, 1], g[:, 100:])

    pal = Image.fromarray(_rgb("coffee")).quantize(16)
    idx = np.asarray(pal)
    clear = int(idx[0, 0])
    pal.save(tmp_path / "p.png", transparency=clear)
    assert probe_image(str(tmp_path / "p.png")).mode == "P"
    out = np.asarray(load_rgb(str(tmp_path / "p.png")))
    assert (out[idx == clear] == 255).all()
    opaque = idx != clear
    assert np.array_equal(out[opaque], np.asarray(pal.convert("RGB"))[opaque])


def test_palette_without_transparency(tmp_path):
    pal = Image.fromarray(_rgb("astronaut")).quantize(64)
    pal.save(tmp_path / "p.bmp")
    assert np.array_equal(np.asarray(load_rgb(str(tmp_path / "p.bmp"))), np.asarray(pal.convert("RGB")))


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    a = _rgb("astronaut")
    p = tmp_path / "cmyk.jpg"
    Image.fromarray(a).convert("CMYK").save(p, quality=95)
    info = probe_image(str(p))
    assert (info.mode, info.format) == ("CMYK", "JPEG")
    out = np.asarray(load_rgb(str(p))).astype(int)
    assert out.shape == a.shape
    assert np.abs(out - a).mean() < 4  # only JPEG loss, not inverted or channel-swapped


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    g = _rgb("camera")
    p = tmp_path / "g16.png"
    Image.fromarray(g.astype(np.uint16) * 257).save(p)  # full 16-bit range
    assert probe_image(str(p)).mode in ("I", "I;16")
    out = np.asarray(load_rgb(str(p)))
    assert np.array_equal(out[..., 0], g)


def test_float_tiff_in_unit_range(tmp_path):
    g = _rgb("camera")
    p = tmp_path / "f.tif"
    Image.fromarray(g.astype(np.float32) / 255.0, "F").save(p)
    out = np.asarray(load_rgb(str(p)))
    assert np.abs(out[..., 0].astype(int) - g).max() <= 1


def test_exif_orientation_is_applied(tmp_path):
    a = _rgb("coffee")  # 600 wide, 400 high
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    p = tmp_path / "rot.jpg"
    im.save(p, exif=exif.tobytes(), quality=95)
    info = probe_image(str(p))
    assert (info.width, info.height) == (400, 600)
    out = np.asarray(load_rgb(str(p))).astype(int)
    assert out.shape == (600, 400, 3)
    assert np.abs(out - np.rot90(a, -1)).mean() < 4


def test_jpeg_named_png_is_read_by_content(tmp_path):
    p = tmp_path / "really_a_jpeg.png"
    Image.fromarray(_rgb("chelsea")).save(p, format="JPEG", quality=95)
    assert probe_image(str(p)).format == "JPEG"
    assert load_rgb(str(p)).size == (451, 300)


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (80, 80), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=50)
    assert Image.open(p).n_frames == 3
    out = np.asarray(load_rgb(str(p)))
    assert (out == (255, 0, 0)).all()


def test_truncated_png_and_jpeg(tmp_path):
    for fmt, ext in (("PNG", "png"), ("JPEG", "jpg")):
        full = tmp_path / f"full.{ext}"
        Image.fromarray(_rgb("astronaut")).save(full, format=fmt)
        raw = full.read_bytes()
        cut = tmp_path / f"cut.{ext}"
        cut.write_bytes(raw[: len(raw) * 2 // 3])
        assert _reason(cut) == "truncated or corrupt image data"


def test_truncation_detected_even_if_another_extension_set_the_global_flag(tmp_path, monkeypatch):
    full = tmp_path / "full.jpg"
    Image.fromarray(_rgb("coffee")).save(full)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(full.read_bytes()[:5000])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    assert _reason(cut) == "truncated or corrupt image data"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored for whoever set it


def test_empty_text_tiny_and_missing(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    assert _reason(tmp_path / "empty.png") == "empty file (0 bytes)"
    (tmp_path / "notes.jpg").write_text("these are my notes, not a picture\n")
    assert _reason(tmp_path / "notes.jpg") == "not a readable image (unknown or unsupported format)"
    Image.fromarray(_rgb("astronaut")[:20, :20]).save(tmp_path / "tiny.png")
    assert _reason(tmp_path / "tiny.png") == "too small (20×20 pixels; the shorter side must be at least 64)"
    assert load_rgb(str(tmp_path / "tiny.png"), min_side=16).size == (20, 20)
    assert _reason(tmp_path / "gone.png").startswith("unreadable (")


def test_decompression_bomb_headers(tmp_path):
    _png_header_only(tmp_path / "bomb.png", 100_000, 100_000)   # beyond Pillow's own limit
    assert _reason(tmp_path / "bomb.png") == "too large (over the 64-megapixel limit)"
    _png_header_only(tmp_path / "big.png", 9000, 9000)           # under Pillow's limit, over ours
    assert _reason(tmp_path / "big.png") == "too large (9000×9000 pixels, over the 64-megapixel limit)"
    assert _reason(tmp_path / "big.png", max_pixels=1_000_000) == \
        "too large (9000×9000 pixels, over the 1-megapixel limit)"


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to list open files")
def test_file_is_closed_after_loading_or_failing(tmp_path):
    good = tmp_path / "good.gif"
    frames = [Image.new("RGB", (80, 80), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(good, save_all=True, append_images=frames[1:])  # multi-frame files keep their handle open
    bad = tmp_path / "bad.png"
    Image.fromarray(_rgb("astronaut")[:20, :20]).save(bad)
    im = load_rgb(str(good))
    probe_image(str(good))
    with pytest.raises(BadImage):
        load_rgb(str(bad))
    assert _open_fds_to(good) == [] and _open_fds_to(bad) == []
    assert np.asarray(im).shape == (80, 80, 3)  # the image lives on without its file


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "GIF"])
def test_random_damage_gives_an_image_or_bad_image(tmp_path, fmt):
    src = Image.fromarray(_rgb("chelsea")).resize((96, 64))
    full = tmp_path / "full"
    src.save(full, format=fmt)
    raw = bytearray(full.read_bytes())
    rng = np.random.default_rng(0)
    outcomes = set()
    for k in range(40):
        damaged = bytearray(raw)
        if k % 2:
            damaged = damaged[: int(rng.integers(1, len(raw)))]                      # cut short
        else:
            pos = rng.integers(0, len(raw), size=8)                                  # flipped bytes
            damaged_arr = np.frombuffer(bytes(damaged), np.uint8).copy()
            damaged_arr[pos] ^= 0xFF
            damaged = bytearray(damaged_arr.tobytes())
        p = tmp_path / f"d{k}.img"
        p.write_bytes(bytes(damaged))
        for fn in (probe_image, load_rgb):
            try:
                out = fn(str(p))
                outcomes.add("ok")
                if fn is load_rgb:
                    assert out.mode == "RGB" and min(out.size) >= 64
            except BadImage as e:
                outcomes.add("bad")
                assert str(e).startswith(f"Cannot use the image {p}: ")
    assert "bad" in outcomes
