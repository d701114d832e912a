"""The toy world: procedural storyboard panels and the shot judge that reads them."""
from __future__ import annotations

import os
import re

import numpy as np
import pytest
from PIL import Image

from lib_storyboard.shots import SHOTS, shot_from_tag
from lib_storyboard.toyworld.degrade import diffusion_like
from lib_storyboard.toyworld.judge import judge_shot
from lib_storyboard.toyworld.sketches import (SHOT_KEYS, ToyworldError, draw_panel, panel_seed, tags_and_caption,
                                              write_dataset)

SHOT_WORDS = re.compile(r"\b(close|closeup|medium|mid|full|wide|long|cu|ms|fs|ls|shot|portrait|body|framing)\b")


def _dark(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L")) < 100


def test_same_seed_same_panel_and_seeds_differ():
    a = draw_panel(7, "ms", 64)
    b = draw_panel(7, "ms", 64)
    assert a.image.tobytes() == b.image.tobytes()
    assert (a.tags, a.caption, a.geometry) == (b.tags, b.caption, b.geometry)
    assert draw_panel(8, "ms", 64).image.tobytes() != a.image.tobytes()
    assert draw_panel(7, "cu", 64).image.tobytes() != a.image.tobytes()


@pytest.mark.parametrize("size", [16, 64, 100, 256])
def test_any_size_gives_an_rgb_square_with_ink(size):
    p = draw_panel(3, "fs", size)
    assert p.image.mode == "RGB" and p.image.size == (size, size)
    a = np.asarray(p.image.convert("L"))
    assert a.min() < 90 and np.median(a) > 240          # black lines on white paper


def test_bad_arguments_are_refused_with_a_sentence():
    with pytest.raises(ToyworldError, match="Shot must be one of"):
        draw_panel(1, "close-up", 64)
    with pytest.raises(ValueError, match="Panel size"):
        draw_panel(1, "cu", 8)
    with pytest.raises(ToyworldError, match="Layout"):
        write_dataset("unused", 1, 32, 0, layout="subfolders")


def test_tags_and_captions_never_mention_the_shot_and_do_not_depend_on_it():
    seen_poses = set()
    for seed in range(300):
        tags, caption = tags_and_caption(seed)
        assert caption.startswith("a sketch of a person ")
        for tag in tags:
            assert shot_from_tag(tag) is None, (seed, tag)
            assert not SHOT_WORDS.search(tag), (seed, tag)
        assert not SHOT_WORDS.search(caption), (seed, caption)
        seen_poses.add(tags[1])
    assert len(seen_poses) >= 6
    for seed in (0, 1, 2):
        panels = [draw_panel(seed, s, 32) for s in SHOT_KEYS]
        assert len({(tuple(p.tags), p.caption) for p in panels}) == 1


@pytest.mark.parametrize("seed", range(12))
def test_each_framing_shows_what_it_claims(seed):
    cu, ms, fs = (draw_panel(seed, s, 128) for s in SHOT_KEYS)
    # close-up: a big head near the top, the body leaves the frame at the bottom
    g = cu.geometry
    assert g["head_radius"] >= 0.2 and g["head_center"][1] - g["head_radius"] >= 0.0 and g["hip_y"] > 1.0
    # medium: the whole head inside, cut between the waist and the hips
    g = ms.geometry
    assert 0.12 <= g["head_radius"] <= 0.19 and g["head_center"][1] - g["head_radius"] > 0.0
    assert g["waist_y"] > 0.75 and g["hip_y"] > 1.0 and not g["feet_visible"]
    # full: the whole figure inside with its feet
    g = fs.geometry
    x0, y0, x1, y1 = g["figure_box"]
    assert g["head_radius"] <= 0.065 and g["feet_visible"] and 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
    # and the pixels agree: lines leave the bottom edge under a close-up or medium figure...
    for p in (cu, ms):
        cx, r = p.geometry["head_center"][0], p.geometry["head_radius"]
        cols = slice(max(0, int((cx - 2 * r) * 128)), int((cx + 2 * r) * 128))
        assert _dark(p.image)[-2:, cols].any()
    # ...and nothing dark lies under a full-shot figure's feet
    cx, r = g["head_center"][0], g["head_radius"]
    cols = slice(int((cx - 1.5 * r) * 128), int((cx + 1.5 * r) * 128) + 1)
    assert not _dark(fs.image)[int((g["feet_y"] + 0.5 * r) * 128) + 1:, cols].any()
    assert _dark(fs.image)[int(y0 * 128):int(y1 * 128), int(x0 * 128):int(x1 * 128) + 1].any()


def _shot_tags(txt: str) -> list[str]:
    return [s.key for s in (shot_from_tag(t) for t in open(txt, encoding="utf-8").read().split(",")) if s]


@pytest.mark.parametrize("layout", ["tags", "folders", "none"])
def test_dataset_layouts_are_readable_by_the_shot_vocabulary(tmp_path, layout):
    paths = write_dataset(str(tmp_path), 2, 48, seed=5, layout=layout)
    assert len(paths) == 6
    found = []
    for k, png in enumerate(paths):
        truth = SHOT_KEYS[k % 3]
        txt = png[:-4] + ".txt"
        assert os.path.isfile(png) and os.path.isfile(txt)
        assert Image.open(png).size == (48, 48)
        rel = os.path.relpath(png, tmp_path)
        if layout == "tags":
            assert os.sep not in rel and _shot_tags(txt) == [truth]
        elif layout == "folders":
            folder = rel.split(os.sep)[0]
            assert shot_from_tag(folder).key == truth and _shot_tags(txt) == []
        else:
            assert os.sep not in rel and _shot_tags(txt) == []
        found.append(truth)
    assert sorted(found) == sorted(SHOT_KEYS * 2)
    leftovers = [f for _, _, fs in os.walk(tmp_path) for f in fs if f.endswith(".tmp")]
    assert leftovers == []
    if layout == "folders":
        assert sorted(os.listdir(tmp_path)) == sorted(s.label for s in SHOTS)


def test_dataset_is_the_panels_of_its_seeds(tmp_path):
    png = write_dataset(str(tmp_path), 1, 40, seed=9, layout="none")[1]
    assert Image.open(png).convert("RGB").tobytes() == draw_panel(panel_seed(9, 1), "ms", 40).image.tobytes()


@pytest.mark.parametrize("size,n", [(64, 20), (256, 8)])
def test_judge_reads_generated_panels(size, n):
    truth, got, figures = [], [], []
    for k in range(3 * n):
        p = draw_panel(panel_seed(31, k), SHOT_KEYS[k % 3], size)
        j = judge_shot(p.image)
        truth.append(p.shot)
        got.append(j.shot)
        figures.append(j.figure)
    acc = np.mean([t == g for t, g in zip(truth, got)])
    assert acc >= 0.98, list(zip(truth, got))
    assert np.mean(figures) >= 0.95


def test_judge_copes_with_messy_panels():
    ok = 0
    for k in range(30):
        p = draw_panel(panel_seed(47, k), SHOT_KEYS[k % 3], 64)
        ok += judge_shot(diffusion_like(p.image, seed=k)).shot == p.shot
    assert ok >= 26


def test_judge_measures_the_head():
    p = draw_panel(4, "ms", 256)
    j = judge_shot(p.image)
    assert j.shot == "ms" and j.confidence > 0.3 and j.figure
    assert abs(j.measurements["head_radius"] / p.geometry["head_radius"] - 1) < 0.2
    assert np.hypot(*np.subtract(j.measurements["head_center"], p.geometry["head_center"])) < 0.3 * p.geometry[
        "head_radius"]
    # an array works as well as a PIL image
    assert judge_shot(np.asarray(p.image)).shot == "ms"


def test_judge_on_blank_noise_and_black_images_says_nothing_sure():
    blank = judge_shot(Image.new("RGB", (64, 64), "white"))
    assert blank.shot is None and blank.confidence == 0.0 and not blank.figure
    grey = judge_shot(np.full((64, 64), 0.5, np.float32))
    assert grey.shot is None
    black = judge_shot(Image.new("L", (64, 64), 0))
    assert black.shot is None
    rng = np.random.default_rng(0)
    for _ in range(3):
        noisy = judge_shot((rng.random((64, 64, 3)) * 255).astype(np.uint8))
        assert noisy.shot is None and noisy.measurements["line_drawing"] is False
    # the colourful mush an untrained decoder paints: no head in it
    smear = Image.fromarray((rng.random((8, 8, 3)) * 160 + 40).astype(np.uint8)).resize((64, 64), Image.BICUBIC)
    framed = Image.new("RGB", (64, 64), "white")
    framed.paste(smear.crop((0, 0, 56, 56)), (4, 4))
    assert judge_shot(framed).shot is None
    with pytest.raises(ValueError, match="at least 8x8"):
        judge_shot(np.zeros((4, 4)))
