"""The dataset builder end to end on real photos (real mediapipe, real files): a folder the trainer's scan reads as
it is, tags cleaned, a report and a contact sheet; bad input refused in one sentence with nothing half-written."""
import json
import os
import struct
import zlib

import pytest
from PIL import Image

from lib_storyboard.dataset.scan import scan_folder
from lib_storyboard.dataset_builder.build import REPORT, SHEET, build_dataset
from lib_storyboard.dataset_builder.tags import caption_tags, clean_tags, split_tags
from lib_storyboard.framing import classify_image
from lib_storyboard.framing.evalset import PEOPLE, photo_path

pytest.importorskip("mediapipe")


def _huge_png_header(path, w=20000, h=20000):
    """A PNG whose header declares 400 megapixels (a few bytes on disk)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    path.write_bytes(raw + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def _files(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    bus = Image.open(photo_path("bus")).convert("RGB")
    a = PEOPLE[0]
    bus.crop((a.cx - 110, a.top - 20, a.cx + 110, a.feet + 20)).save(src / "walker full.jpg")
    bus.crop((a.cx - 90, a.top - 10, a.cx + 90, a.chin + 40)).save(src / "walker_face.png")
    Image.open(photo_path("astronaut")).save(src / "astronaut.png")
    Image.open(photo_path("coffee")).save(src / "coffee.png")            # no person
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    _huge_png_header(src / "huge.png")
    return src


def test_tags_are_cleaned():
    assert split_tags("a, b\nc") == ["a", " b", "c"]
    assert clean_tags(["Long_Hair", "long hair", "  Smile ", "close-up", "1girl", "", "Rain,"],
                      blacklist=["1GIRL"]) == ["long hair", "smile", "rain"]
    assert caption_tags("ms", ["Hero_Name"], ["sword", "hero name", "full body"], ["sword"]) == \
        ["medium shot", "hero name"]


def test_build_writes_a_dataset_the_trainer_reads_as_it_is(source, tmp_path):
    out = tmp_path / "dataset"
    result = build_dataset({"source": str(source), "out": str(out), "sketch": "lineart_standard",
                            "prefix": "Storyboard_Sketch, my hero", "blacklist": "my hero", "repeats": 5})
    assert result.counts() == {"cu": 1, "ms": 1, "fs": 1}
    scan = scan_folder(str(out))
    assert scan.skipped == [] and scan.unlabelled == []
    assert {it.rel_path: it.shot_key for it in scan.items} == {
        "5_cu/walker_face.png": "cu", "5_ms/astronaut.png": "ms", "5_fs/walker-full.png": "fs"}
    assert all(it.tags == ["storyboard sketch"] for it in scan.items)    # the shot tag became the trigger
    assert (out / "5_fs" / "walker-full.txt").read_text() == "full shot, storyboard sketch\n"
    report = json.loads((out / REPORT).read_text())
    assert report["counts"] == {"cu": 1, "ms": 1, "fs": 1}
    reasons = {s["origin"]: s["reason"] for s in report["skipped"]}
    assert reasons["coffee.png"].startswith("no person") and "corrupt" in reasons["broken.jpg"]
    assert "too large" in reasons["huge.png"]
    fs = next(i for i in report["images"] if i["shot"] == "fs")
    assert "ankles" in fs["reason"] and fs["origin"] == "walker full.jpg"
    sheet = Image.open(out / SHEET)
    assert sheet.size[0] > 500 and sheet.size[1] > 3 * 128
    assert not [f for f in _files(out) if os.path.basename(f).startswith(".")]   # no temporaries left


def test_refusals_are_one_sentence_and_write_nothing(source, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="holds no images"):
        build_dataset({"source": str(empty), "out": str(out)})
    nobody = tmp_path / "nobody"
    nobody.mkdir()
    Image.open(photo_path("coffee")).save(nobody / "coffee.png")
    Image.open(photo_path("chelsea")).save(nobody / "cat.png")
    with pytest.raises(ValueError, match=r"None of the 2 source file\(s\) gave a usable image \(2 no person\)"):
        build_dataset({"source": str(nobody), "out": str(out), "sketch": "none"})
    assert not out.exists()
    with pytest.raises(ValueError, match="inside the source folder"):
        build_dataset({"source": str(nobody), "out": str(nobody / "ds")})
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        build_dataset({"source": str(nobody), "out": str(tmp_path / "a_file" / "ds")})
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        build_dataset({"source": str(nobody), "out": str(full)})
    with pytest.raises(ValueError, match="frames_per_cut. must be between 1 and 50"):
        build_dataset({"source": str(nobody), "out": str(out), "frames_per_cut": 0})
    assert _files(full) == ["keep.txt"] and not out.exists()


def test_a_failure_or_interrupt_mid_build_leaves_nothing(source, tmp_path):
    out = tmp_path / "out"
    calls = []

    def failing(image):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the detector crashed")
        return classify_image(image)

    with pytest.raises(RuntimeError):
        build_dataset({"source": str(source), "out": str(out), "sketch": "canny"}, classify=failing)
    assert len(calls) == 3 and not out.exists()     # two images had been written as temporaries: all gone
    out.mkdir()
    stops = iter([False, False, False, True])
    with pytest.raises(ValueError, match="interrupted; nothing was written"):
        build_dataset({"source": str(source), "out": str(out), "sketch": "none"}, should_stop=lambda: next(stops))
    assert _files(out) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder(source, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(ValueError, match="permission denied"):
            build_dataset({"source": str(source), "out": str(ro / "ds")})
    finally:
        ro.chmod(0o755)
    assert _files(ro) == []
