"""Real mediapipe face detection (models from the wheel) on real photos."""
import os
import sys
import tempfile

# The catalog tests also import ultralytics: no DNS probes, settings in a throw-away folder.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="yolo-cfg-"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib import cbook  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data  # noqa: E402

from lib_storyboard.detection import DetectorError, DetectorCatalog  # noqa: E402
from lib_storyboard.detection.mediapipe_face import MODELS, detect_mediapipe  # noqa: E402

pytest.importorskip("mediapipe")


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def astronaut():
    return Image.fromarray(data.astronaut())


@pytest.fixture(scope="module")
def hopper():
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return Image.open(f).convert("RGB")


def test_short_range_finds_the_astronaut_face_where_it_is(astronaut):
    d = detect_mediapipe("mediapipe_face_short", astronaut)
    assert len(d) == 1 and d.labels == ["face"]
    x1, y1, x2, y2 = d.boxes[0]
    # offline.md: x177 y82 w95 h95, score 0.922
    assert abs(x1 - 177) < 4 and abs(y1 - 82) < 4 and abs((x2 - x1) - 95) < 4 and abs((y2 - y1) - 95) < 4
    assert d.confidences[0] == pytest.approx(0.92, abs=0.03)
    m = np.asarray(d.masks[0])
    assert m.shape == (512, 512) and m[130, 225] == 255 and m[10, 10] == 0
    assert d.preview.size == astronaut.size and d.preview.mode == "RGB"


def test_full_range_and_mesh_agree_with_it(astronaut):
    short = detect_mediapipe("mediapipe_face_short", astronaut).boxes[0]
    full = detect_mediapipe("mediapipe_face_full", astronaut)
    assert len(full) == 1 and iou(full.boxes[0], short) > 0.6
    mesh = detect_mediapipe("mediapipe_face_mesh", astronaut)
    assert len(mesh) == 1 and iou(mesh.boxes[0], short) > 0.6
    hull = np.asarray(mesh.masks[0]) > 0
    x1, y1, x2, y2 = (int(v) for v in mesh.boxes[0])
    box_area = (x2 - x1) * (y2 - y1)
    # a convex hull of the face, not its box: fills most of the box but leaves the corners empty
    assert 0.6 * box_area < hull.sum() < 0.95 * box_area
    assert not hull[y1, x1] and not hull[y2 - 1, x2 - 1]


def test_grace_hopper_face_is_found(hopper):
    for model in ("mediapipe_face_short", "mediapipe_face_full"):
        d = detect_mediapipe(model, hopper)
        assert len(d) == 1, model
        x1, y1, x2, y2 = d.boxes[0]
        # her face spans roughly x 170-365, y 130-340 of the 512x600 photo
        assert iou((x1, y1, x2, y2), (170, 140, 366, 338)) > 0.7, (model, d.boxes)
        assert d.confidences[0] > 0.8


@pytest.mark.parametrize("name", ["coffee", "chelsea", "rocket"])
def test_photos_without_faces_give_nothing(name):
    img = Image.fromarray(getattr(data, name)())
    for model in MODELS:
        assert len(detect_mediapipe(model, img, confidence=0.1)) == 0, model


def test_unknown_model_is_refused(astronaut):
    with pytest.raises(ValueError, match="Unknown mediapipe model"):
        detect_mediapipe("mediapipe_hands", astronaut)


def test_catalog_runs_mediapipe_and_reports_it(astronaut):
    reg = DetectorCatalog(allow_download=False)
    assert reg.availability()["mediapipe"] is None
    assert {"mediapipe_face_short", "mediapipe_face_full", "mediapipe_face_mesh"} <= set(reg.names())
    assert len(reg.detect("mediapipe_face_full", astronaut, 0.5)) == 1
    info = {m.name: m.to_dict() for m in reg.models()}["mediapipe_face_mesh"]
    assert info["family"] == "mediapipe" and info["source"] == "builtin" and info["path"] is None
    with pytest.raises(DetectorError, match="Unknown detector 'nope'"):
        reg.detect("nope", astronaut)


def test_missing_mediapipe_turns_off_only_mediapipe(monkeypatch, astronaut, tmp_path):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # what an absent package looks like to `import`
    reg = DetectorCatalog([str(tmp_path)], allow_download=True)
    why = reg.availability()["mediapipe"]
    assert why.startswith("mediapipe detectors are off because the mediapipe package cannot be imported")
    assert why.endswith(".") and "\n" not in why
    assert not [m for m in reg.models() if m.family == "mediapipe"]
    with pytest.raises(DetectorError, match="mediapipe detectors are off"):
        reg.detect("mediapipe_face_short", astronaut)
    # YOLO still lists its (downloadable) models
    assert "face_yolov8n.pt" in reg.names()
