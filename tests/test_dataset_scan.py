"""Scanning a real dataset tree: shots from tags and sub-folders, tag files, skipped, unlabelled, hidden files."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from skimage import data

from lib_storyboard.dataset.scan import DatasetError, parse_tags, scan_folder


def _save(root, rel: str, photo: str = "astronaut", tags: str | bytes | None = None, fmt: str | None = None,
          size: tuple[int, int] | None = None) -> None:
    path = root.joinpath(*rel.split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(getattr(data, photo)())
    if size:
        im = im.resize(size)
    im.save(path, format=fmt)
    if tags is not None:
        txt = path.with_suffix(".txt")
        txt.write_bytes(tags if isinstance(tags, bytes) else tags.encode("utf-8"))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("sketches")
    _save(root, "close-up/a.png", "astronaut", "1girl, smile")
    _save(root, "close-up/b.jpg", "camera", fmt="JPEG")                     # folder only, no tag file
    _save(root, "close-up/fs/h.png", "coffee", size=(96, 64))               # nearest folder wins: fs
    _save(root, "2_ms/c.webp", "chelsea", "cat, ms")                        # tag agrees with the folder
    _save(root, "2_ms/d.png", "coffee", "full shot, cup")                   # a tag beats the folder
    _save(root, "misc/e.png", "chelsea", "close up, Red  hair , red hair, ,\n, ink")
    _save(root, "misc/f.jpg", "coffee", "cu, long shot", fmt="JPEG")        # conflicting
    _save(root, "misc/f2.png", "coffee", "cu, close-up, CU, pencil")        # same shot thrice: fine
    _save(root, "misc/g.png", "camera")                                     # no shot anywhere
    _save(root, "misc/bom.png", "astronaut", "\ufeffmedium shot, ink".encode("utf-8"))
    _save(root, "misc/latin.png", "astronaut", "caf\xe9, close-up".encode("cp1252"))
    _save(root, "misc/trg.bmp", "camera", "<fs_trg>, sketch")
    _save(root, "misc/UPPER.PNG", "camera", "CU")
    _save(root, "misc/jpeg_named.png", "chelsea", "ms", fmt="JPEG")
    bad = root / "close-up" / "bad"
    bad.mkdir()
    raw = (root / "misc" / "e.png").read_bytes()
    (bad / "trunc.png").write_bytes(raw[: len(raw) // 2])
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "text.jpg").write_text("not a picture")
    _save(root, "close-up/bad/tiny.png", "astronaut", size=(20, 20))
    _save(root, ".hidden/x.png", "astronaut", "cu")
    _save(root, "close-up/.y.png", "astronaut")
    (root / "notes.pdf").write_bytes(b"%PDF-1.4")
    (root / "orphan.txt").write_text("cu")
    _save(root, "top.png", "astronaut", "fs")
    return root


USABLE = [  # rel_path, shot, tags, (w, h), mode
    ("2_ms/c.webp", "ms", ["cat"], (451, 300), "RGB"),
    ("2_ms/d.png", "fs", ["cup"], (600, 400), "RGB"),
    ("close-up/a.png", "cu", ["1girl", "smile"], (512, 512), "RGB"),
    ("close-up/b.jpg", "cu", [], (512, 512), "L"),
    ("close-up/fs/h.png", "fs", [], (96, 64), "RGB"),
    ("misc/UPPER.PNG", "cu", [], (512, 512), "L"),
    ("misc/bom.png", "ms", ["ink"], (512, 512), "RGB"),
    ("misc/e.png", "cu", ["Red hair", "ink"], (451, 300), "RGB"),
    ("misc/f2.png", "cu", ["pencil"], (600, 400), "RGB"),
    ("misc/jpeg_named.png", "ms", [], (451, 300), "RGB"),
    ("misc/trg.bmp", "fs", ["sketch"], (512, 512), "L"),
    ("top.png", "fs", [], (512, 512), "RGB"),
]
SKIPPED = [
    ("close-up/bad/empty.jpg", "empty file (0 bytes)"),
    ("close-up/bad/text.jpg", "not a readable image (unknown or unsupported format)"),
    ("close-up/bad/tiny.png", "too small (20×20 pixels; the shorter side must be at least 64)"),
    ("close-up/bad/trunc.png", "truncated or corrupt image data"),
    ("misc/f.jpg", "conflicting shot tags (close-up, full shot)"),
    ("misc/latin.png", "its tag file latin.txt is not UTF-8 text"),
]


def test_items_skipped_unlabelled_exact(tree):
    scan = scan_folder(str(tree))
    assert scan.root == str(tree)
    got = [(it.rel_path, it.shot_key, it.tags, (it.width, it.height), it.mode) for it in scan.items]
    assert got == USABLE
    assert [(s.rel_path, s.reason) for s in scan.skipped] == SKIPPED
    assert scan.unlabelled == ["misc/g.png"]
    assert scan.ignored == ["notes.pdf"]
    assert all(it.path == str(tree.joinpath(*it.rel_path.split("/"))) for it in scan.items)
    assert scan.items[0].shot.trigger == "<ms_trg>"


def test_summaries_and_report(tree):
    scan = scan_folder(str(tree))
    assert scan.counts_by_shot() == {"cu": 5, "ms": 3, "fs": 4}
    freq = scan.tag_frequency()
    assert freq == {"ink": 2, "1girl": 1, "Red hair": 1, "cat": 1, "cup": 1, "pencil": 1, "smile": 1, "sketch": 1}
    assert list(freq)[0] == "ink"
    lines = scan.report_lines()
    assert lines[0] == f"Dataset {tree}: 12 of 19 images usable (close-up 5, medium shot 3, full shot 4)."
    assert "Skipped 6 file(s):" in lines
    assert "  misc/f.jpg: conflicting shot tags (close-up, full shot)" in lines
    assert "  close-up/bad/trunc.png: truncated or corrupt image data" in lines
    i = next(k for k, line in enumerate(lines) if line.startswith("Skipped 1 image(s) without a shot"))
    assert lines[i + 1] == "  misc/g.png"
    assert "Converted to RGB on loading: L 3 (transparency is composited on white)." in lines
    assert lines[-1].endswith("notes.pdf")
    d = json.loads(json.dumps(scan.as_dict()))
    assert d["counts"] == {"cu": 5, "ms": 3, "fs": 4}
    assert [x["rel_path"] for x in d["items"]] == [u[0] for u in USABLE]
    assert d["items"][0]["shot_key"] == "ms"
    assert d["skipped"][4] == {"path": str(tree / "misc" / "f.jpg"), "rel_path": "misc/f.jpg",
                               "reason": "conflicting shot tags (close-up, full shot)"}
    assert d["unlabelled"] == ["misc/g.png"] and d["report"] == lines
    scan.require_items()  # has items: no error


def test_scan_is_deterministic(tree):
    assert scan_folder(str(tree)).as_dict() == scan_folder(str(tree) + "/").as_dict()


def test_not_recursive_sees_only_the_top_level(tree):
    scan = scan_folder(str(tree), recursive=False)
    assert [it.rel_path for it in scan.items] == ["top.png"]
    assert scan.skipped == [] and scan.unlabelled == [] and scan.ignored == ["notes.pdf"]


def test_min_side_is_passed_to_the_probe(tree):
    scan = scan_folder(str(tree), min_side=16)
    assert "close-up/bad/tiny.png" in [it.rel_path for it in scan.items]
    scan = scan_folder(str(tree), min_side=100)
    assert ("close-up/fs/h.png", "too small (96×64 pixels; the shorter side must be at least 100)") in \
        [(s.rel_path, s.reason) for s in scan.skipped]


def test_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"^The dataset folder .*nope does not exist\.$"):
        scan_folder(str(tmp_path / "nope"))
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DatasetError, match=r"^The dataset path .*file\.png is not a folder\.$"):
        scan_folder(str(tmp_path / "file.png"))
    with pytest.raises(DatasetError, match=r"^No dataset folder was given\.$"):
        scan_folder("  ")
    empty = tmp_path / "empty"
    (empty / ".git").mkdir(parents=True)
    _save(empty, ".git/x.png")
    (empty / "a.txt").write_text("cu")
    with pytest.raises(DatasetError, match=r"holds no images \(png, jpg, jpeg, webp, bmp\)\.$"):
        scan_folder(str(empty))


def test_all_images_unusable(tmp_path):
    _save(tmp_path, "a.png", "camera")
    (tmp_path / "b.jpg").write_bytes(b"")
    scan = scan_folder(str(tmp_path))
    assert scan.items == [] and scan.unlabelled == ["a.png"]
    assert scan.report_lines()[1] == "No close-up images: <cu_trg> will learn nothing from this dataset."
    with pytest.raises(DatasetError, match=r"^None of the 2 images in .* can be used \(1 skipped, 1 without a shot\)"):
        scan.require_items()


def test_parse_tags():
    assert parse_tags("a, b ,, B,\r\n c  d ,\n\n, a") == ["a", "b", "c d"]
    assert parse_tags("") == [] and parse_tags(" , ,\n") == []


def test_transparent_sketch_in_a_scan_reports_its_mode(tmp_path):
    a = np.zeros((80, 80, 4), np.uint8)
    a[20:60, 20:60] = (0, 0, 0, 255)
    Image.fromarray(a, "RGBA").save(tmp_path / "s.png")
    (tmp_path / "s.txt").write_text("cu")
    scan = scan_folder(str(tmp_path))
    assert [(it.rel_path, it.mode) for it in scan.items] == [("s.png", "RGBA")]
