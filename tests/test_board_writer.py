"""The board's folder: new every time, written whole, reloadable, and one panel redrawn without touching the rest.

The panels come from the toy world's sketch drawer, a real drawer of the framing each prompt's trigger names."""
import json
import os
import re

import pytest
from PIL import Image

from lib_storyboard import shots
from lib_storyboard.board.options import BoardOptions
from lib_storyboard.board.scenes import parse_scenes
from lib_storyboard.board.writer import load_board, new_board_folder, redraw_panel, render, write_board
from lib_storyboard.toyworld.sketches import draw_panel

SCENES = parse_scenes('CU | a girl looks up at the rain | "It\'s here."\nms | she opens her umbrella | "Finally."\n'
                      '- | the empty street | \nfs | she runs | "Wait!"\ncu | her smile | "사랑해"\n'
                      'ms | the bus arrives | "Come on."\nfs | they leave |', "lines")
OPTS = BoardOptions(title="Rain day", seed=3, seed_policy="per_panel", width=64, height=64, panel_width=96,
                    panels_per_page=4, negative="blurry")
MODEL = {"checkpoint": "toybase", "storyboard": "demo", "sampler": "DDIM"}


def sketch(prompt, negative, seed, width, height, pose="none"):
    found = shots.find_triggers(prompt)
    return draw_panel(seed, found[0].key if found else "fs", width).image


def _bytes(folder):
    return {fn: open(os.path.join(folder, fn), "rb").read() for fn in sorted(os.listdir(folder))}


def test_a_board_writes_its_panels_png_pdf_and_json(tmp_path):
    files = write_board(str(tmp_path), "scenes", SCENES, OPTS, sketch, MODEL)
    assert re.fullmatch(r"\d{8}-\d{6}-rain-day", os.path.basename(files.folder))
    assert sorted(os.listdir(files.folder)) == ["board.json", "board.pdf", "board.png"] + \
        [f"panel-00{i}.png" for i in range(1, 8)]
    with Image.open(files.panels[0]) as im:
        assert im.size == (64, 64)
        assert im.text["parameters"] == ("<cu_trg>, a girl looks up at the rain\nNegative prompt: blurry\nSteps: 20, "
                                         "Sampler: DDIM, CFG scale: 7.0, Seed: 3, Size: 64x64, Model: toybase, "
                                         "Storyboard model: demo")
    pdf = open(files.pdf, "rb").read()
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) == 2          # 7 panels, 4 a page
    data = json.load(open(files.json, encoding="utf-8"))
    assert data["model"] == MODEL and data["options"]["title"] == "Rain day"
    assert [p["seed"] for p in data["panels"]] == [3, 4, 5, 6, 7, 8, 9]
    assert data["panels"][2] == {"number": 3, "shot": None, "prompt": "the empty street", "negative": "blurry",
                                 "seed": 5, "file": "panel-003.png"}
    assert data["scene_list"]["scenes"][4]["dialogue"] == '"사랑해"'


def test_board_json_reloads_to_the_same_board(tmp_path):
    files = write_board(str(tmp_path), "scenes", SCENES, OPTS, sketch, MODEL)
    board = load_board(files.folder)
    assert board.scenes == SCENES and board.options == OPTS and board.model == MODEL
    images = [Image.open(p).convert("RGB") for p in files.panels]
    png, _, _ = render(board.plans(), images, board.options)
    assert png == open(files.png, "rb").read()


def test_redrawing_one_panel_leaves_the_other_panel_files_byte_identical(tmp_path):
    files = write_board(str(tmp_path), "scenes", SCENES, OPTS, sketch, MODEL)
    before = _bytes(files.folder)
    again = redraw_panel(files.folder, 4, sketch, seed=77)
    after = _bytes(files.folder)
    changed = {fn for fn in before if before[fn] != after[fn]}
    assert changed == {"panel-004.png", "board.png", "board.pdf", "board.json"} and set(after) == set(before)
    with Image.open(again.panels[3]) as im:
        assert "Seed: 77" in im.text["parameters"]
    board = load_board(files.folder)
    assert board.seeds == {4: 77} and [p.seed for p in board.plans()] == [3, 4, 5, 77, 7, 8, 9]
    redraw_panel(files.folder, 2, sketch)                   # a random new seed
    assert load_board(files.folder).plans()[1].seed != 4
    with pytest.raises(ValueError, match=r"^The board has panels 1 to 7; there is no panel 9\.$"):
        redraw_panel(files.folder, 9, sketch)


def test_a_new_board_never_reuses_a_folder(tmp_path):
    now = 1_700_000_000.0
    first = new_board_folder(str(tmp_path), "Rain day", now)
    (tmp_path / os.path.basename(first) / "mine.txt").write_text("keep")
    second = new_board_folder(str(tmp_path), "Rain day", now)
    third = new_board_folder(str(tmp_path), "Rain day", now)
    assert second == first + "-2" and third == first + "-3"
    assert (tmp_path / os.path.basename(first) / "mine.txt").read_text() == "keep"
    a = write_board(str(tmp_path), "x", SCENES, OPTS, sketch, MODEL)
    b = write_board(str(tmp_path), "x", SCENES, OPTS, sketch, MODEL)
    assert a.folder != b.folder and _bytes(a.folder)["board.png"] == _bytes(b.folder)["board.png"]


def test_a_failed_drawing_leaves_no_folder(tmp_path):
    def fails_at_third(prompt, negative, seed, width, height, pose="none"):
        if "the empty street" in prompt:
            raise RuntimeError("out of memory")
        return sketch(prompt, negative, seed, width, height, pose)

    with pytest.raises(RuntimeError):
        write_board(str(tmp_path / "out"), "x", SCENES, OPTS, fails_at_third, MODEL)
    assert not os.path.exists(tmp_path / "out") or os.listdir(tmp_path / "out") == []


def test_a_stopped_board_keeps_its_finished_panels_and_redraws_the_rest_with_their_planned_seeds(tmp_path):
    drawn = []

    def counting(*args, **kw):
        drawn.append(args[2])
        image = sketch(*args, **kw)
        image.info["parameters"] = f"host infotext, Seed: {args[2]}"   # a drawer that knows its own parameters
        return image

    files = write_board(str(tmp_path), "scenes", SCENES, OPTS, counting, MODEL, should_stop=lambda: len(drawn) >= 3)
    # The third panel was cut short by the stop: only the two whole panels are kept.
    assert [os.path.basename(p) for p in files.panels] == ["panel-001.png", "panel-002.png"]
    assert sorted(os.listdir(files.folder)) == ["board.json", "board.pdf", "board.png", "panel-001.png", "panel-002.png"]
    with Image.open(files.panels[1]) as im:
        assert im.text["parameters"] == "host infotext, Seed: 4"
    assert json.load(open(files.json))["not_drawn"] == [3, 4, 5, 6, 7]
    before = _bytes(files.folder)
    files = redraw_panel(files.folder, 5, sketch)
    board = load_board(files.folder)
    assert board.not_drawn == {3, 4, 6, 7} and board.plans()[4].seed == 7       # its planned per-panel seed
    after = _bytes(files.folder)
    assert {k for k in after if after[k] != before.get(k)} == {"board.json", "board.pdf", "board.png", "panel-005.png"}
    # Nothing finished, nothing written.
    assert write_board(str(tmp_path / "none"), "scenes", SCENES, OPTS, sketch, MODEL, should_stop=lambda: True) is None
    assert not os.path.exists(tmp_path / "none")
