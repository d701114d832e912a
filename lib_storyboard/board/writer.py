"""A board's folder: `<out>/<yyyymmdd-hhmmss>-<slug>/` with panel-NNN.png, board.png, board.pdf and board.json.

A new board never reuses a folder (the next free name is taken), and its files appear together or not at all.
Redrawing one panel rewrites that panel and the board files, in one atomic group, and leaves every other panel file
as it was, byte for byte. board.json holds what it takes to lay the same board out again from the panel files.

A board stopped part-way (Interrupt) keeps the panels it finished: the others show as "not drawn" on the board,
have no panel file and are listed in board.json's `not_drawn`; redrawing one draws it with its planned seed.
"""
from __future__ import annotations

import json
import os
import random
import re
import time
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, PngImagePlugin

from ..formats.atomic import atomic_group, atomic_write_bytes, atomic_write_text
from .draw import DrawPanel, draw_panels
from .fonts import find_font
from .layout import pdf_bytes, png_bytes, render_grid, render_pages
from .options import BoardOptions
from .prompts import PanelPlan, plan_board
from .scenes import SEED_MAX, SceneList, parse_scenes

BOARD_FORMAT = "storyboard-board"
BOARD_VERSION = 1


@dataclass
class BoardFiles:
    folder: str
    panels: list[str]
    png: str
    pdf: str
    json: str
    warnings: list[str]

    def all(self) -> list[str]:
        return self.panels + [self.png, self.pdf, self.json]


@dataclass
class Board:
    """A board as board.json describes it."""
    scenes: SceneList
    options: BoardOptions
    seeds: dict[int, int]      # panels redrawn with a seed of their own
    model: dict                # checkpoint, storyboard model, sampler: what drew the panels
    not_drawn: set[int] = field(default_factory=set)   # panels a stopped drawing never reached

    def plans(self) -> list[PanelPlan]:
        return plan_board(self.scenes, self.options, self.seeds)


def slug(text: str) -> str:
    s = re.sub(r"[^\w]+", "-", text.lower(), flags=re.UNICODE).strip("-_")[:40].strip("-_")
    return s or "board"


def new_board_folder(out: str, name: str, now: float | None = None) -> str:
    """Create and return a folder no one has used: `<stamp>-<slug>`, else `<stamp>-<slug>-2`, `-3`, …"""
    os.makedirs(out, exist_ok=True)
    base = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + "-" + slug(name)
    for k in range(1, 10_000):
        folder = os.path.join(out, base if k == 1 else f"{base}-{k}")
        try:
            os.mkdir(folder)     # fails if it exists: claiming the name and checking it are one step
            return folder
        except FileExistsError:
            continue
    raise ValueError(f"{out} already holds 10000 boards named {base}; choose another output folder.")


def infotext(plan: PanelPlan, options: BoardOptions, model: dict) -> str:
    """The panel's parameters in A1111's infotext form, so the WebUI's PNG Info reads them back."""
    fields = [("Steps", options.steps), ("Sampler", model.get("sampler")), ("CFG scale", options.cfg),
              ("Seed", plan.seed), ("Size", f"{options.width}x{options.height}"),
              ("Model hash", model.get("checkpoint_hash")), ("Model", model.get("checkpoint")),
              ("Storyboard model", model.get("storyboard"))]
    text = plan.prompt + (f"\nNegative prompt: {plan.negative}" if plan.negative else "")
    return text + "\n" + ", ".join(f"{k}: {v}" for k, v in fields if v not in (None, ""))


def _panel_png(image: Image.Image, plan: PanelPlan, options: BoardOptions, model: dict) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", image.info.get("parameters") or infotext(plan, options, model))
    return png_bytes(image, info)


NOT_DRAWN = "not drawn"


def _placeholder(options: BoardOptions, font) -> Image.Image:
    """What the board shows for a panel a stopped drawing never reached."""
    image = Image.new("RGB", (options.width, options.height), (225, 225, 225))
    ImageDraw.Draw(image).text((options.width / 2, options.height / 2), NOT_DRAWN, font=font, fill=(90, 90, 90),
                               anchor="mm")
    return image


def render(plans: list[PanelPlan], images: list[Image.Image | None], options: BoardOptions) -> tuple[bytes, bytes, list]:
    """board.png and board.pdf bytes, and the font warning if any. A None image is a panel not drawn yet."""
    title = options.title
    text = " ".join([title, "Storyboard — page 0123456789 of", NOT_DRAWN] + [p.label + " " + p.dialogue for p in plans])
    font, warning = find_font(text, options.font_size, options.font_path)
    pairs = [(p, im if im is not None else _placeholder(options, font)) for p, im in zip(plans, images)]
    board = render_grid(pairs, options, font, title)
    pages = render_pages(pairs, options, font)
    return png_bytes(board), pdf_bytes(pages), [warning] if warning else []


def _board_json(board: Board, plans: list[PanelPlan], warnings: list[str]) -> str:
    return json.dumps({
        "format": BOARD_FORMAT, "version": BOARD_VERSION, "model": board.model, "options": board.options.to_dict(),
        "scene_list": board.scenes.as_dict(), "seeds": {str(k): v for k, v in sorted(board.seeds.items())},
        "panels": [p.as_dict() for p in plans], "not_drawn": sorted(board.not_drawn),
        "files": {"png": "board.png", "pdf": "board.pdf"}, "warnings": warnings}, ensure_ascii=False, indent=1) + "\n"


def _write(folder: str, board: Board, plans, images, redraw: set[int]) -> BoardFiles:
    png, pdf, warnings = render(plans, images, board.options)
    with atomic_group():
        for plan, image in zip(plans, images):
            if plan.number in redraw and image is not None:
                atomic_write_bytes(os.path.join(folder, plan.file_name), _panel_png(image, plan, board.options,
                                                                                    board.model))
        atomic_write_bytes(os.path.join(folder, "board.png"), png)
        atomic_write_bytes(os.path.join(folder, "board.pdf"), pdf)
        atomic_write_text(os.path.join(folder, "board.json"), _board_json(board, plans, warnings))
    return BoardFiles(folder, [os.path.join(folder, p.file_name) for p in plans if p.number not in board.not_drawn],
                      os.path.join(folder, "board.png"), os.path.join(folder, "board.pdf"),
                      os.path.join(folder, "board.json"), warnings)


def write_board(out: str, name: str, scene_list: SceneList, options: BoardOptions, draw: DrawPanel,
                model: dict | None = None, on_panel=None, should_stop=None) -> BoardFiles | None:
    """Draw the panels, then write the board into a new folder under `out`. Drawing comes first: a failed drawing
    leaves no folder behind. A drawing stopped by `should_stop()` writes the panels it finished (None, and no
    folder, when it finished none)."""
    board = Board(scene_list, options, {}, dict(model or {}))
    plans = board.plans()
    images: list = draw_panels(plans, options, draw, on_panel, should_stop)
    if not images:
        return None
    board.not_drawn = {p.number for p in plans[len(images):]}
    images += [None] * (len(plans) - len(images))
    folder = new_board_folder(out, options.title or name)
    try:
        return _write(folder, board, plans, images, {p.number for p in plans})
    except BaseException:
        for fn in os.listdir(folder):   # only our own temporaries can be in a folder created a moment ago
            os.remove(os.path.join(folder, fn))
        os.rmdir(folder)
        raise


def load_board(folder: str) -> Board:
    path = os.path.join(folder, "board.json")
    if not os.path.isfile(path):
        raise ValueError(f"{folder} is not a board folder (it has no board.json).")
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON ({e.msg}).") from None
    if not isinstance(data, dict) or data.get("format") != BOARD_FORMAT:
        raise ValueError(f"{path} is not a storyboard board file.")
    scenes = parse_scenes(json.dumps(data["scene_list"]), "json")
    return Board(scenes, BoardOptions.from_dict(data["options"]),
                 {int(k): int(v) for k, v in data.get("seeds", {}).items()}, data.get("model", {}),
                 {int(n) for n in data.get("not_drawn", [])})


def board_images(folder: str, board: Board) -> list[Image.Image | None]:
    """The panel images in board order, None for the panels not drawn yet."""
    images = []
    for p in board.plans():
        if p.number in board.not_drawn:
            images.append(None)
            continue
        path = os.path.join(folder, p.file_name)
        if not os.path.isfile(path):
            raise ValueError(f"The board's panel file {p.file_name} is missing; it cannot be laid out again.")
        with Image.open(path) as im:
            images.append(im.convert("RGB"))
    return images


def redraw_panel(folder: str, number: int, draw: DrawPanel, seed: int | None = None,
                 should_stop=None) -> BoardFiles | None:
    """Draw panel `number` again with a new seed (random unless given; a panel not drawn yet keeps its planned
    seed); rewrites that panel and the board's PNG, PDF and JSON, and no other panel file. A drawing stopped by
    `should_stop()` writes nothing and returns None."""
    board = load_board(folder)
    plans = board.plans()
    numbers = [p.number for p in plans]
    if number not in numbers:
        raise ValueError(f"The board has panels 1 to {len(plans)}; there is no panel {number}.")
    old = plans[numbers.index(number)].seed
    if seed is None and number in board.not_drawn:
        seed = old
    elif seed is None:
        seed = old
        while seed == old:
            seed = random.SystemRandom().randrange(SEED_MAX + 1)
    elif not 0 <= seed <= SEED_MAX:
        raise ValueError(f"The seed must be between 0 and {SEED_MAX}, not {seed}.")
    images = board_images(folder, board)
    board.seeds[number] = seed
    plans = board.plans()
    k = numbers.index(number)
    drawn = draw_panels([plans[k]], board.options, draw, should_stop=should_stop)
    if not drawn:
        return None
    images[k] = drawn[0]
    board.not_drawn.discard(number)
    return _write(folder, board, plans, images, {number})
