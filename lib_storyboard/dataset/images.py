"""Safe image loading: any sane image on disk becomes an 8-bit RGB PIL image, anything else a `BadImage`.

Users' folders hold whatever their tools wrote: CMYK scans, 16-bit PNGs, transparent sketches, phone photos with
EXIF rotation, files cut short by a failed copy. Training must never die on one of them, so every failure becomes
one readable sentence and the scanner lists the file as skipped.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Only plain raster formats: restricting Image.open keeps exotic plugins (EPS runs Ghostscript) out of the way.
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "DIB", "GIF", "TIFF")  # JPEG also opens MPO (camera JPEGs)
MAX_PIXELS = 64_000_000  # 8000×8000; a decompression bomb declares far more in its header
_HIGH_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_ALPHA = ("RGBA", "RGBa", "LA", "La", "PA")
_SUPPORTED = _HIGH_BIT + _ALPHA + ("1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr")
_ORIENTATION = 0x0112
_truncation_lock = threading.Lock()


class BadImage(ValueError):
    """An image file that cannot be used; `reason` is a short phrase for reports, str() a full sentence."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"Cannot use the image {path}: {reason}.")


@dataclass(frozen=True)
class ImageInfo:
    width: int    # after EXIF orientation
    height: int
    mode: str     # the file's PIL mode before conversion, e.g. "CMYK", "I;16", "RGBA"
    format: str   # "PNG", "JPEG", ...


@contextlib.contextmanager
def _strict_decoding():
    """Decode with truncation errors on, even if another extension set PIL's global flag to tolerate them.

    Only when the flag is set do we touch it (under a lock, restored afterwards); normally nothing is changed.
    """
    if not ImageFile.LOAD_TRUNCATED_IMAGES:
        yield
        return
    with _truncation_lock:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = True


def _pillow_open():
    """Pillow's own `Image.open`. ultralytics replaces it with a wrapper that, when a file fails to open, tries to
    pip-install a HEIF plugin into the running environment; a dataset scan must never do that."""
    fn = Image.open
    while getattr(fn, "__module__", "PIL.Image") != "PIL.Image":
        inner = getattr(sys.modules.get(fn.__module__), "_image_open", None)
        if inner is None:
            break
        fn = inner
    return fn


@contextlib.contextmanager
def _opened(path: str, min_side: int, max_pixels: int):
    """Open `path` lazily (header only) after the cheap checks; the file is closed on exit."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise BadImage(path, f"unreadable ({e.strerror or e})") from None
    if size == 0:
        raise BadImage(path, "empty file (0 bytes)")
    too_large = f"too large (over the {max_pixels / 1e6:g}-megapixel limit)"
    try:
        with warnings.catch_warnings(), _strict_decoding():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we apply our own limit below
            im = _pillow_open()(path, formats=FORMATS)
    except Image.DecompressionBombError:
        raise BadImage(path, too_large) from None
    except UnidentifiedImageError:
        raise BadImage(path, "not a readable image (unknown or unsupported format)") from None
    except OSError as e:
        if e.errno is not None:  # permission denied and other system errors
            raise BadImage(path, f"unreadable ({e.strerror or e})") from None
        raise BadImage(path, "truncated or corrupt image data") from None  # a header cut short
    except Exception:  # plugins raise SyntaxError, struct.error, KeyError... on damaged headers
        raise BadImage(path, "truncated or corrupt image data") from None
    try:
        w, h = im.size
        if w * h > max_pixels:
            raise BadImage(path, f"too large ({w}×{h} pixels, over the {max_pixels / 1e6:g}-megapixel limit)")
        if min(w, h) < min_side:
            raise BadImage(path, f"too small ({w}×{h} pixels; the shorter side must be at least {min_side})")
        if im.mode not in _SUPPORTED:
            raise BadImage(path, f"unsupported colour mode {im.mode}")
        yield im
    finally:
        im.close()


def _decode(path: str, action) -> None:
    """Run a decoding step, turning every decoder complaint into `BadImage("truncated or corrupt")`."""
    try:
        with _strict_decoding():
            action()
    except BadImage:
        raise
    except Exception:  # decoders' exception types are no stable contract; any of them means unusable data
        raise BadImage(path, "truncated or corrupt image data") from None


def _orientation(im: Image.Image) -> int:
    """EXIF orientation from the header alone (PNG's getexif() would decode the whole image)."""
    raw = im.info.get("exif")
    if not raw:
        return 1
    try:
        exif = Image.Exif()
        exif.load(raw)
        return int(exif.get(_ORIENTATION, 1))
    except Exception:  # a broken EXIF block is not a broken image
        return 1


def probe_image(path: str, min_side: int = 64, max_pixels: int = MAX_PIXELS) -> ImageInfo:
    """Check cheaply that `path` decodes, without a full decode: PNG chunk CRCs, JPEG at 1/8 scale, else load.

    Raises BadImage for the same reasons `load_rgb` would. A PNG whose compressed data is damaged behind valid
    checksums still passes, so callers of `load_rgb` must expect BadImage too.
    """
    with _opened(path, min_side, max_pixels) as im:
        w, h = im.size
        mode, fmt = im.mode, im.format or "?"
        orientation = _orientation(im)
        if fmt == "PNG":
            _decode(path, im.verify)  # walks every chunk and checks its CRC; inflating is skipped
        elif fmt in ("JPEG", "MPO"):
            im.draft(im.mode, ((w + 7) // 8, (h + 7) // 8))  # entropy decoding still reads every byte
            _decode(path, im.load)
        else:
            _decode(path, im.load)
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    return ImageInfo(w, h, mode, fmt)


def _to_8bit(im: Image.Image) -> Image.Image:
    """16-bit and float images to 8-bit grey, by their value range rather than by clipping at 255."""
    a = np.asarray(im).astype(np.float64)
    if im.mode == "F":
        a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
        hi = float(a.max()) if a.size else 0.0
        # Float files store 0..1 (HDR/TIFF tools), 0..255 or 0..65535; pick the range the data lives in.
        scale = 255.0 if hi <= 1.0 else (1.0 if hi <= 255.0 else 255.0 / 65535.0)
    else:
        # Pillow decodes 16-bit greyscale PNG as "I" holding 0..65535, so "I" is read as 16-bit too.
        scale = 255.0 / 65535.0
    out = np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)
    return Image.fromarray(out, "L")


def to_rgb(im: Image.Image) -> Image.Image:
    """Any supported mode to 8-bit RGB; transparency is composited on white (sketches are drawn on white paper)."""
    if im.mode in _HIGH_BIT:
        im = _to_8bit(im)
    if im.mode == "1":
        im = im.convert("L")
    if im.mode == "CMYK":
        return im.convert("RGB")  # Pillow's plain formula; embedded print profiles are not applied
    if im.mode in _ALPHA or "transparency" in im.info:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def load_rgb(path: str, min_side: int = 64, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode `path` fully into an 8-bit RGB image, EXIF orientation applied, first frame of animations.

    Raises BadImage (a ValueError) naming the file and the reason. The file is closed when this returns.
    """
    with _opened(path, min_side, max_pixels) as im:
        _decode(path, im.load)  # frame 0: Image.open leaves animations on their first frame
        try:
            im = ImageOps.exif_transpose(im)
        except Exception:  # a broken EXIF block is not a broken image: keep it unrotated
            im = im.copy()
    try:
        return to_rgb(im)
    except ValueError as e:  # a conversion Pillow does not offer
        raise BadImage(path, f"unsupported colour mode {im.mode} ({e})") from None
