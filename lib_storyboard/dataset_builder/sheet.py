"""The contact sheet: every image of the dataset as a thumbnail, one row block per shot, captioned with the
classifier's confidence, so a glance shows what each token will learn from."""
from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

from ..shots import SHOTS

THUMB = 128
COLUMNS = 8
MAX_PER_SHOT = 48   # a sheet, not an archive: beyond this the report has the full list


def contact_sheet(entries: list[tuple[str, Image.Image, str]], thumb: int = THUMB,
                  columns: int = COLUMNS) -> Image.Image:
    """`entries`: (shot key, image, caption). Returns an RGB sheet with a heading per shot."""
    font = ImageFont.load_default()
    pad, head, cap = 6, 22, 14
    blocks = []
    for s in SHOTS:
        items = [(im, c) for k, im, c in entries if k == s.key]
        if items:
            blocks.append((f"{s.label} ({len(items)})", items[:MAX_PER_SHOT]))
    if not blocks:
        blocks = [("no images", [])]
    cell = thumb + cap + pad
    height = pad + sum(head + max(1, -(-len(items) // columns)) * cell for _, items in blocks)
    sheet = Image.new("RGB", (pad + columns * (thumb + pad), height), "white")
    draw = ImageDraw.Draw(sheet)
    y = pad
    for title, items in blocks:
        draw.text((pad, y + 4), title, fill=(0, 0, 0), font=font)
        y += head
        for i, (im, caption) in enumerate(items):
            x0, y0 = pad + (i % columns) * (thumb + pad), y + (i // columns) * cell
            t = im.convert("RGB")
            t.thumbnail((thumb, thumb))
            sheet.paste(t, (x0 + (thumb - t.width) // 2, y0 + (thumb - t.height) // 2))
            draw.rectangle([x0, y0, x0 + thumb - 1, y0 + thumb - 1], outline=(200, 200, 200))
            draw.text((x0 + 2, y0 + thumb + 1), caption[:22], fill=(60, 60, 60), font=font)
        y += max(1, -(-len(items) // columns)) * cell
    return sheet
