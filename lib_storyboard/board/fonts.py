"""A TrueType font that has every character of the board's text, or the best one there is and a warning.

Coverage is checked with Pillow alone (no font library the host may lack): a character the font lacks renders as
the font's missing-glyph box, the same bitmap as a character no font has.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache

from PIL import ImageFont

# Tried in order after the user's font: DejaVu first (it reads well at caption sizes), then fonts with Hangul,
# kana and Han, then the common Windows and macOS fonts.
KNOWN_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc", "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
    "C:/Windows/Fonts/malgun.ttf", "C:/Windows/Fonts/YuGothM.ttc", "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/arial.ttf",
    "/System/Library/Fonts/AppleSDGothicNeo.ttc", "/System/Library/Fonts/Supplemental/Arial Unicode.ttf",
    "/Library/Fonts/Arial Unicode.ttf", "/System/Library/Fonts/Helvetica.ttc",
)
_NO_SUCH_CHAR = "\U0010fffd"     # a private-use code point: drawn as the missing-glyph box by every font


def _mask(font, ch: str) -> tuple:
    m = font.getmask(ch)
    return m.size, bytes(m)


@lru_cache(maxsize=32)
def _load(path: str, size: int):
    try:
        return ImageFont.truetype(path, size)
    except (OSError, ValueError):
        return None


def missing_chars(font, text: str) -> list[str]:
    """The characters of `text` that `font` lacks, in order of first appearance."""
    box = _mask(font, _NO_SUCH_CHAR)
    seen, out = set(), []
    for ch in text:
        if ch in seen or ch.isspace():
            continue
        seen.add(ch)
        if _mask(font, ch) == box:
            out.append(ch)
    return out


def _installed_fonts() -> list[str]:
    """Every font file fontconfig knows (Linux, some macOS setups); none where there is no fc-list."""
    if not shutil.which("fc-list"):
        return []
    try:
        out = subprocess.run(["fc-list", "--format", "%{file}\n"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted({p for p in out.splitlines() if p.lower().endswith((".ttf", ".ttc", ".otf"))})


def find_font(text: str, size: int, font_path: str = "", candidates: tuple[str, ...] | None = None):
    """(font, warning or None): the first font (the user's, then the known system fonts, then every installed one)
    that has every character of `text`; else the one that lacks the fewest, with one sentence saying so."""
    user = (font_path,) if font_path else ()
    if candidates is None:
        tried = [p for p in user + KNOWN_FONTS if os.path.isfile(p)]
        more = [p for p in _installed_fonts() if p not in tried]
    else:
        tried, more = [p for p in user + tuple(candidates) if os.path.isfile(p)], []
    warning = None
    if font_path and _load(font_path, size) is None:
        warning = f"The font file {font_path} could not be read as a TrueType or OpenType font."
    best, best_missing = None, None
    for path in tried + more:
        font = _load(path, size)
        if font is None:
            continue
        missing = missing_chars(font, text)
        if not missing:
            return font, warning
        if best_missing is None or len(missing) < len(best_missing):
            best, best_missing = font, missing
    if best is None:
        return ImageFont.load_default(), (
            "No TrueType font was found, so the labels use Pillow's small built-in font and only ASCII shows; "
            "install DejaVu Sans (fonts-dejavu-core) or set 'font_path'.")
    sample = ", ".join(f"'{c}'" for c in best_missing[:5])
    return best, (f"No font found has every character of the board's text ({len(best_missing)} missing, e.g. {sample}), "
                  "so those show as boxes; install Noto Sans CJK (fonts-noto-cjk) or set 'font_path' to a font that has them.")
