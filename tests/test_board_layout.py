"""The board's pictures: the grid, its labels and captions, wrapping, the PDF pages, and the fonts."""
import os
import re

import numpy as np
import pytest
from PIL import Image, ImageFont

from lib_storyboard.board.fonts import find_font, missing_chars
from lib_storyboard.board.layout import pdf_bytes, render_grid, render_pages, wrap_text
from lib_storyboard.board.options import BoardOptions
from lib_storyboard.board.prompts import plan_board
from lib_storyboard.board.scenes import parse_scenes
from lib_storyboard.toyworld.sketches import draw_panel

DEJAVU = next((p for p in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf")
               if os.path.isfile(p)), None)
needs_dejavu = pytest.mark.skipif(DEJAVU is None, reason="DejaVu Sans is not installed (fonts-dejavu-core)")
LONG = ("Finally, after all these weeks of waiting for the storm to come back to the valley, the rain is here "
        "and nothing will ever be the same again.")


def _board(n: int, dialogue=lambda i: f'"Line {i}."'):
    text = "\n".join(f"{'cu ms fs'.split()[i % 3]} | scene {i} | {dialogue(i)}" for i in range(n))
    plans = plan_board(parse_scenes(text, "lines"), BoardOptions(seed_policy="per_panel"))
    return [(p, draw_panel(p.seed, p.shot, 64).image) for p in plans]


def _font(size=14):
    return ImageFont.truetype(DEJAVU, size)


@needs_dejavu
def test_long_dialogue_wraps_between_words_to_the_panel_width():
    font = _font()
    lines = wrap_text(LONG, font, 200)
    assert len(lines) > 2 and " ".join(lines) == LONG                     # nothing lost, cut only at spaces
    assert all(font.getlength(l) <= 200 for l in lines)
    assert all(font.getlength(f"{a} {b.split()[0]}") > 200 for a, b in zip(lines, lines[1:]))   # greedy: full lines
    word = "Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaah!"
    cut = wrap_text(f"No {word} ok", font, 120)
    assert cut[0] == "No" and "".join(cut[1:-1]) + cut[-1].replace(" ok", "") == word and cut[-1].endswith("ok")
    assert all(font.getlength(l) <= 120 for l in cut)
    assert wrap_text("two\nlines", font, 200) == ["two", "lines"]


def _ink(img, box):
    a = np.asarray(img.convert("L").crop(box))
    return int((a < 128).sum())


@needs_dejavu
def test_grid_has_every_panel_its_label_and_caption_and_rows_line_up():
    panels = _board(5, dialogue=lambda i: LONG if i == 1 else ("" if i == 4 else "Hi."))
    opts = BoardOptions(columns=3, panel_width=128)
    font = _font()
    board = render_grid(panels, opts, font)
    gap, lh = 16, sum(font.getmetrics()) + 2
    assert board.width == gap + 3 * (128 + gap)
    long_lines = len(wrap_text(LONG, font, 128))
    row1 = lh + 4 + 128 + 4 + lh * long_lines           # the row's tallest caption sets every cell's height
    row2 = lh + 4 + 128 + 4 + lh * 1
    assert board.height == gap + row1 + gap + row2 + gap
    for k, (plan, image) in enumerate(panels):
        x = gap + (k % 3) * (128 + gap)
        y = gap + (0 if k < 3 else row1 + gap)
        label, py = (x, y, x + 128, y + lh), y + lh + 4
        shown = board.crop((x, py, x + 128, py + 128))
        want = image.convert("RGB").resize((128, 128), Image.LANCZOS)
        assert np.abs(np.asarray(shown, int) - np.asarray(want, int)).max() == 0       # the panel itself
        assert _ink(board, label) > 0                                                   # "1 · CU"
        caption = (x, py + 128 + 4, x + 128, py + 128 + 4 + lh * (long_lines if k == 1 else 1))
        assert (_ink(board, caption) > 0) == (k != 4)                                   # no dialogue, no caption
    # the long caption really goes down several lines
    x = gap + 128 + gap
    last = (x, gap + row1 - lh, x + 128, gap + row1)
    assert _ink(board, last) > 0


@needs_dejavu
def test_pdf_has_one_page_per_six_panels_and_the_pages_read_back():
    panels = _board(13)
    opts = BoardOptions(columns=3, panel_width=96, panels_per_page=6, title="Rain")
    pages = render_pages(panels, opts, _font())
    assert len(pages) == 3 and len({p.size for p in pages}) == 1
    data = pdf_bytes(pages)
    assert data.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b(?!s)", data)) == 3
    assert re.search(rb"/Count\s+3\b", data)


@needs_dejavu
def test_a_character_no_font_has_gives_one_warning_and_still_renders():
    font, warning = find_font("Scene 1 \"사랑해\"", 14, candidates=(DEJAVU,))
    assert font.path == DEJAVU
    assert warning == ("No font found has every character of the board's text (3 missing, e.g. '사', '랑', '해'), so "
                       "those show as boxes; install Noto Sans CJK (fonts-noto-cjk) or set 'font_path' to a font "
                       "that has them.")
    assert find_font("Scene 1 \"Wait!\"", 14, candidates=(DEJAVU,))[1] is None
    assert missing_chars(font, "abc 사") == ["사"]


@needs_dejavu
def test_the_users_font_comes_first_and_a_bad_one_is_named(tmp_path):
    bad = tmp_path / "broken.ttf"
    bad.write_bytes(b"not a font")
    font, warning = find_font("abc", 14, str(bad), candidates=(DEJAVU,))
    assert font.path == DEJAVU and warning == f"The font file {bad} could not be read as a TrueType or OpenType font."
    assert find_font("abc", 14, DEJAVU, candidates=())[0].path == DEJAVU


def test_korean_uses_an_installed_cjk_font_or_says_none_has_it():
    font, warning = find_font("사랑해", 14)
    if warning is None:
        assert missing_chars(font, "사랑해") == []
    else:
        assert "사" in warning and "fonts-noto-cjk" in warning
