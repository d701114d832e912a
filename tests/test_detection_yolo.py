"""YOLO detectors: models listed from folders, loaded through the unpickle hook and run; downloads offline.

The models are real YOLOv8n architectures built from ultralytics' yaml (random weights, so the test checks
plumbing and shapes). One copy gets a large class-0 bias so that it does output boxes and masks.
"""
import contextlib
import http.server
import os
import socket
import sys
import tempfile
import threading

# Before ultralytics is imported anywhere: no DNS probes, settings in a throw-away folder.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="yolo-cfg-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from huggingface_hub.utils import reset_sessions  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data  # noqa: E402

from lib_storyboard.detection import DetectorError, DetectorCatalog  # noqa: E402
from lib_storyboard.detection import yolo  # noqa: E402

pytest.importorskip("ultralytics")


def _build(yaml: str, path: str, biased: bool) -> None:
    from ultralytics import YOLO

    m = YOLO(yaml)
    m.model.names = {i: ("face" if i == 0 else f"thing{i}") for i in range(len(m.model.names))}
    if biased:  # class 0 scores sigmoid(4) = 0.98 everywhere, other classes ~0
        for seq in m.model.model[-1].cv3:
            seq[-1].bias.data[:] = -10.0
            seq[-1].bias.data[0] = 4.0
    m.save(path)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    host = tmp_path_factory.mktemp("host_adetailer")
    ours = tmp_path_factory.mktemp("storyboard_detailer")
    _build("yolov8n.yaml", str(host / "yolov8n_random.pt"), biased=False)
    _build("yolov8n-seg.yaml", str(ours / "blob_seg.pt"), biased=True)
    _build("yolov8n.yaml", str(ours / "blob_box.pt"), biased=True)
    (ours / "notes.txt").write_text("not a model")
    return str(host), str(ours)


@pytest.fixture(scope="module")
def coffee():
    return Image.fromarray(data.coffee())  # 600x400, not square: masks must come back at image size


class Counting:
    """An unpickle context like the host glue's, counting how often it is entered."""

    def __init__(self):
        self.entered = 0

    @contextlib.contextmanager
    def __call__(self):
        self.entered += 1
        yield


def test_models_in_folders_are_listed_host_first(folders):
    host, ours = folders
    reg = DetectorCatalog([host, ours], allow_download=False)
    assert reg.availability()["yolo"] is None
    yolo_models = {m.name: m for m in reg.models() if m.family == "yolo"}
    assert set(yolo_models) == {"yolov8n_random.pt", "blob_seg.pt", "blob_box.pt"}
    assert yolo_models["yolov8n_random.pt"].path == os.path.join(host, "yolov8n_random.pt")
    assert all(m.source == "folder" for m in yolo_models.values())
    # downloads on: the standard hub models are offered as well
    names = DetectorCatalog([host, ours], allow_download=True).names()
    assert {"face_yolov8n.pt", "hand_yolov8n.pt", "person_yolov8n-seg.pt"} <= set(names)


def test_random_model_loads_through_the_hook_and_runs(folders):
    host, ours = folders
    hook = Counting()
    reg = DetectorCatalog([host, ours], allow_download=False, unpickle_context=hook, device="cpu")
    astro = Image.fromarray(data.astronaut())
    d = reg.detect("yolov8n_random.pt", astro, confidence=0.3, imgsz=320)
    assert d.size == (512, 512) and len(d) == 0 and d.preview.size == (512, 512)
    assert hook.entered == 1
    reg.detect("yolov8n_random.pt", astro, imgsz=320)
    assert hook.entered == 1  # loaded once, then cached


def test_segmentation_model_gives_polygon_masks_at_image_size(folders, coffee):
    reg = DetectorCatalog(list(folders), allow_download=False, device="cpu")
    d = reg.detect("blob_seg.pt", coffee, confidence=0.5, imgsz=160)
    assert len(d) > 0
    assert set(d.labels) == {"face"} and all(0.9 < c <= 1.0 for c in d.confidences)
    for box, mask in zip(d.boxes[:20], d.masks[:20]):
        assert mask.mode == "L" and mask.size == (600, 400)
        assert 0 <= box[0] < box[2] <= 600 and 0 <= box[1] < box[3] <= 400
        ys, xs = np.nonzero(np.asarray(mask))
        if len(xs):  # a segment mask stays (nearly) inside its box
            assert xs.min() >= box[0] - 2 and xs.max() <= box[2] + 2
    assert d.preview.size == (600, 400)


def test_box_model_gives_box_masks_and_class_filter(folders, coffee):
    reg = DetectorCatalog(list(folders), allow_download=False, device="cpu")
    d = reg.detect("blob_box.pt", coffee, confidence=0.5, imgsz=160)
    assert len(d) > 0
    x1, y1, x2, y2 = (int(round(v)) for v in d.boxes[0])
    m = np.asarray(d.masks[0])
    assert m[y1:y2, x1:x2].min() == 255 and m.sum() == 255 * (x2 - x1) * (y2 - y1)
    assert len(reg.detect("blob_box.pt", coffee, 0.5, classes=["thing3"], imgsz=160)) == 0
    assert len(reg.detect("blob_box.pt", coffee, 0.5, classes=["FACE"], imgsz=160)) == len(d)


def test_only_bare_names_from_the_folders_are_loaded(folders, tmp_path):
    reg = DetectorCatalog(list(folders), allow_download=False)
    outside = tmp_path / "evil.pt"
    outside.write_bytes(b"not loaded")
    for name in (str(outside), "../evil.pt", os.path.join("..", os.path.basename(str(tmp_path)), "evil.pt")):
        with pytest.raises(DetectorError, match="must be a bare file name"):
            reg.detect(name, Image.new("RGB", (64, 64)))
    with pytest.raises(DetectorError, match="'evil.pt' is not in any models folder and is not a standard"):
        reg.detect("evil.pt", Image.new("RGB", (64, 64)))


def test_downloads_off_gives_one_clear_sentence(folders):
    reg = DetectorCatalog(list(folders), allow_download=False)
    assert "face_yolov8n.pt" not in reg.names()
    with pytest.raises(DetectorError, match=r"^YOLO model 'face_yolov8n.pt' is not in any models folder and "
                                            r"downloads are turned off; place the file in a models folder\.$"):
        reg.detect("face_yolov8n.pt", Image.new("RGB", (64, 64)))


def test_download_offline_gives_one_clear_sentence_without_network(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    reset_sessions()
    attempts = []

    def no_network(*a, **k):
        attempts.append(a)
        raise OSError("network used in an offline test")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    dest = tmp_path / "downloads"
    reg = DetectorCatalog([], download_dir=str(dest), allow_download=True)
    with pytest.raises(DetectorError) as e:
        reg.detect("face_yolov8n.pt", Image.new("RGB", (64, 64)))
    msg = str(e.value)
    assert msg.startswith("Could not download face_yolov8n.pt into ") and "Bingsu/adetailer" in msg
    assert msg.endswith("place the file in a models folder instead.") and "\n" not in msg
    assert attempts == []
    assert not dest.exists() or not any(p.suffix == ".pt" for p in dest.rglob("*"))


@pytest.fixture
def loopback_hub(folders, monkeypatch):
    """A hub mirror on 127.0.0.1 serving a real model file under the standard name, the way the hub answers."""
    import huggingface_hub.constants

    with open(os.path.join(folders[1], "blob_box.pt"), "rb") as f:
        payload = f.read()
    requests_seen = []

    class Hub(http.server.BaseHTTPRequestHandler):
        def _answer(self, body):
            requests_seen.append((self.command, self.path))
            if self.path != "/Bingsu/adetailer/resolve/main/face_yolov8n.pt":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("X-Repo-Commit", "0123456789abcdef0123456789abcdef01234567")
            self.send_header("ETag", '"model-etag-1"')
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if body:
                self.wfile.write(payload)

        def do_HEAD(self):
            self._answer(False)

        def do_GET(self):
            self._answer(True)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    reset_sessions()  # the hub client caches an HTTP session built for the offline setting
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", payload, requests_seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        monkeypatch.undo()
        reset_sessions()


def test_standard_model_is_downloaded_on_first_use_then_found_locally(loopback_hub, tmp_path):
    endpoint, payload, seen = loopback_hub
    dest = tmp_path / "storyboard_models"
    reg = DetectorCatalog([], download_dir=str(dest), allow_download=True, device="cpu", hub_endpoint=endpoint)
    assert {m.name: m for m in reg.models()}["face_yolov8n.pt"].source == "hub"
    d = reg.detect("face_yolov8n.pt", Image.fromarray(data.coffee()), 0.5, imgsz=160)
    assert len(d) > 0 and set(d.labels) == {"face"}
    assert (dest / "face_yolov8n.pt").read_bytes() == payload
    assert ("GET", "/Bingsu/adetailer/resolve/main/face_yolov8n.pt") in seen
    # afterwards it is an ordinary local file: listed from the folder, loaded with downloads off, no request
    count = len(seen)
    offline = DetectorCatalog([], download_dir=str(dest), allow_download=False, device="cpu")
    info = {m.name: m for m in offline.models()}["face_yolov8n.pt"]
    assert info.source == "folder" and info.path == str(dest / "face_yolov8n.pt")
    assert len(offline.detect("face_yolov8n.pt", Image.fromarray(data.coffee()), 0.5, imgsz=160)) == len(d)
    assert len(seen) == count


def test_missing_ultralytics_turns_off_only_yolo(monkeypatch, folders):
    monkeypatch.setitem(sys.modules, "ultralytics", None)
    reg = DetectorCatalog(list(folders), allow_download=True)
    why = reg.availability()["yolo"]
    assert why.startswith("yolo detectors are off because the ultralytics package cannot be imported")
    assert [m.family for m in reg.models()] == ["mediapipe"] * 3
    with pytest.raises(DetectorError, match="yolo detectors are off"):
        reg.detect("blob_box.pt", Image.new("RGB", (64, 64)))


def test_prepare_env_creates_the_config_dir_and_respects_user_values(monkeypatch, tmp_path):
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("YOLO_OFFLINE", "0")
    yolo.prepare_ultralytics_env(offline=True)
    assert (tmp_path / "cfg" / "Ultralytics").is_dir()
    assert os.environ["YOLO_OFFLINE"] == "0"  # a value the user chose is left alone
    monkeypatch.delenv("YOLO_OFFLINE")
    yolo.prepare_ultralytics_env(offline=True)
    assert os.environ["YOLO_OFFLINE"] == "1"
