"""Sources of a dataset: image folders through the safe loader, videos through cut detection (a real video file
written by OpenCV here), near-duplicate frames dropped."""
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from lib_storyboard.dataset_builder.dedupe import Deduper, dhash, distance
from lib_storyboard.dataset_builder.sources import SourceItem, SourceSkip, iter_sources, list_sources
from lib_storyboard.dataset_builder.video import choose_frames, find_cuts, sample_video

SHOT = 20  # frames per shot at 10 fps: 2 s each


def _scene(kind: int, i: int) -> np.ndarray:
    """One frame of a moving shape on a coloured set; `kind` picks the set (a new shot)."""
    colours = [(180, 60, 40), (40, 170, 60), (30, 30, 200), (200, 200, 40)]
    f = np.full((120, 160, 3), colours[kind], np.uint8)
    f[:, : 40 + kind * 20] //= 2  # each set-up has its own layout, not only its own colour
    cv2.circle(f, (30 + 2 * i, 60), 18, (255, 255, 255), -1)
    return f


def write_video(path, shots, black_frames=0):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    assert w.isOpened()
    for kind in shots:
        for i in range(SHOT):
            w.write(_scene(kind, i))
    for _ in range(black_frames):
        w.write(np.zeros((120, 160, 3), np.uint8))
    w.release()
    return str(path)


def test_cuts_are_found_where_the_set_changes(tmp_path):
    video = write_video(tmp_path / "clip.mp4", [0, 1, 2, 3])
    cuts, count, fps = find_cuts(video)
    assert count == 4 * SHOT and fps == pytest.approx(10)
    assert cuts == [0, SHOT, 2 * SHOT, 3 * SHOT]


def test_at_most_n_frames_per_cut_spread_inside_it():
    picks = choose_frames([0, 20, 25], 60, 3)
    assert [c for _, c in picks] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert all(0 <= i < 20 for i, c in picks if c == 0) and all(20 <= i < 25 for i, c in picks if c == 1)
    assert choose_frames([0, 58], 60, 5)[-2:] == [(58, 1), (59, 1)]  # a 2-frame cut gives 2 frames
    with pytest.raises(ValueError, match="at least 1"):
        choose_frames([0], 10, 0)


def test_video_sampling_drops_black_frames_and_respects_the_budget(tmp_path):
    video = write_video(tmp_path / "clip.mp4", [0, 1, 2], black_frames=SHOT)
    s = sample_video(video, per_cut=2)
    assert len(s.cuts) == 4 and s.blank == 2 and len(s.frames) == 6
    assert [f.cut for f in s.frames] == [0, 0, 1, 1, 2, 2]
    assert s.frames[0].image.size == (160, 120) and s.frames[0].image.mode == "RGB"
    assert len(sample_video(video, per_cut=2, max_frames=3).frames) <= 3


def test_near_duplicates_are_dropped_and_new_compositions_kept():
    a = Image.fromarray(_scene(0, 0))
    recoded = Image.fromarray(cv2.GaussianBlur(_scene(0, 0), (3, 3), 0))
    assert distance(dhash(a), dhash(recoded)) <= 2
    d = Deduper()
    assert d.is_new(a) and not d.is_new(recoded) and d.is_new(Image.fromarray(_scene(2, 0)))


def test_folder_of_images_and_videos_with_bad_files(tmp_path):
    src = tmp_path / "src"
    (src / "stills").mkdir(parents=True)
    Image.fromarray(_scene(1, 3)).save(src / "stills" / "a b.png")
    (src / "stills" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    (src / "junk.mp4").write_bytes(b"this is not a video")
    write_video(src / "clip.mp4", [0, 3])
    (src / "notes.md").write_text("ignored")
    root, rels = list_sources(str(src))
    assert rels == ["clip.mp4", "junk.mp4", "stills/a b.png", "stills/broken.jpg"]
    out = list(iter_sources(root, rels, frames_per_cut=1))
    items = [o for o in out if isinstance(o, SourceItem)]
    skips = {o.origin: o.reason for o in out if isinstance(o, SourceSkip)}
    assert [i.stem for i in items] == ["clip_f000010", "clip_f000030", "stills_a-b"]
    assert items[0].origin == "clip.mp4 @ 1.0 s (cut 1)"
    assert "cannot open or decode" in skips["junk.mp4"]
    assert "corrupt" in skips["stills/broken.jpg"]


def test_sources_that_hold_nothing_are_refused_in_one_sentence(tmp_path):
    with pytest.raises(ValueError, match="holds no images"):
        list_sources(str(tmp_path))
    with pytest.raises(ValueError, match="does not exist"):
        list_sources(str(tmp_path / "missing"))
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="neither an image"):
        list_sources(str(tmp_path / "x.txt"))
    single = write_video(tmp_path / "one.mp4", [2])
    assert list_sources(single) == (str(tmp_path), ["one.mp4"])
    assert os.path.isfile(single)
