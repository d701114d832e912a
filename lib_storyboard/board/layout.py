"""The board's pictures: a grid of panels with their number and shot above and their dialogue under them, as one
PNG and as PDF pages of a few panels each.

Every cell of a row has the row's tallest caption, so the panels of a row line up; long dialogue wraps at word
boundaries to the panel's width (a single word wider than the panel is broken between characters).
"""
from __future__ import annotations

import io

from PIL import Image, ImageDraw

from .options import BoardOptions
from .prompts import PanelPlan

GAP = 16          # between cells and around the board
LABEL_GAP = 4     # between the label, the panel and the caption
INK, PAPER, FRAME = (20, 20, 20), (255, 255, 255), (150, 150, 150)


def wrap_text(text: str, font, width: int) -> list[str]:
    """`text` as lines no wider than `width` px: broken between words, and inside a word only when that word alone
    is wider than `width`. Line breaks in the text are kept."""
    lines: list[str] = []
    for para in text.splitlines() or [""]:
        line = ""
        for word in para.split():
            trial = f"{line} {word}" if line else word
            if _width(font, trial) <= width:
                line = trial
                continue
            if line:
                lines.append(line)
            line = ""
            while _width(font, word) > width:   # only a single word too long for the panel is cut
                cut = _fit(font, word, width)
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    return lines


def _fit(font, word: str, width: int) -> int:
    """How many leading characters of `word` fit in `width` (at least one, so wrapping always advances)."""
    n = 1
    while n < len(word) and _width(font, word[:n + 1]) <= width:
        n += 1
    return n


def _width(font, text: str) -> float:
    return ImageDraw.Draw(Image.new("L", (1, 1))).textlength(text, font=font)


def _line_height(font) -> int:
    asc, desc = font.getmetrics() if hasattr(font, "getmetrics") else (10, 2)
    return asc + desc + 2


def _scaled(image: Image.Image, width: int) -> Image.Image:
    h = max(1, round(image.height * width / image.width))
    return image.convert("RGB").resize((width, h), Image.LANCZOS)


def render_grid(panels: list[tuple[PanelPlan, Image.Image]], options: BoardOptions, font, header: str = "") -> Image.Image:
    """The panels in `options.columns` columns, with `header` (the title) on top when given."""
    pw, lh = options.panel_width, _line_height(font)
    cols = max(1, min(options.columns, len(panels)))
    cells = [(plan, _scaled(im, pw), wrap_text(plan.dialogue, font, pw) if plan.dialogue else []) for plan, im in panels]
    rows = [cells[i:i + cols] for i in range(0, len(cells), cols)]
    row_heights = [lh + LABEL_GAP + max(c[1].height for c in r) + LABEL_GAP + lh * max(len(c[2]) for c in r)
                   for r in rows]
    top = GAP + (lh + GAP if header else 0)
    width = GAP + cols * (pw + GAP)
    board = Image.new("RGB", (width, top + sum(h + GAP for h in row_heights)), PAPER)
    d = ImageDraw.Draw(board)
    if header:
        d.text((GAP, GAP), header, font=font, fill=INK)
    y = top
    for r, height in zip(rows, row_heights):
        for k, (plan, image, caption) in enumerate(r):
            x = GAP + k * (pw + GAP)
            d.text((x, y), plan.label, font=font, fill=INK)
            py = y + lh + LABEL_GAP
            board.paste(image, (x, py))
            d.rectangle((x - 1, py - 1, x + image.width, py + image.height), outline=FRAME)
            for j, line in enumerate(caption):
                d.text((x, py + image.height + LABEL_GAP + j * lh), line, font=font, fill=INK)
        y += height + GAP
    return board


def render_pages(panels: list[tuple[PanelPlan, Image.Image]], options: BoardOptions, font) -> list[Image.Image]:
    """One image per PDF page, `options.panels_per_page` panels each, with a "title — page k of n" header."""
    n = options.panels_per_page
    chunks = [panels[i:i + n] for i in range(0, len(panels), n)]
    title = options.title or "Storyboard"
    pages = [render_grid(c, options, font, f"{title} — page {k} of {len(chunks)}") for k, c in enumerate(chunks, 1)]
    # Same page size throughout: a short last page keeps the full pages' size instead of shrinking.
    w, h = max(p.width for p in pages), max(p.height for p in pages)
    out = []
    for p in pages:
        page = Image.new("RGB", (w, h), PAPER)
        page.paste(p, (0, 0))
        out.append(page)
    return out


def pdf_bytes(pages: list[Image.Image]) -> bytes:
    buf = io.BytesIO()
    pages[0].save(buf, "PDF", save_all=True, append_images=pages[1:], resolution=96.0)
    return buf.getvalue()


def png_bytes(image: Image.Image, pnginfo=None) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", pnginfo=pnginfo)
    return buf.getvalue()
