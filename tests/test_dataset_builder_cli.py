"""`python -m lib_storyboard dataset | classify | validate`: a film made here from package photos becomes a dataset
(one frame per cut, near-duplicates dropped); bad input exits 2 with one sentence; validation on real photos."""
import json

import cv2
import numpy as np
import pytest
from PIL import Image

from lib_storyboard.cli import main
from lib_storyboard.dataset.scan import scan_folder
from lib_storyboard.framing.evalset import PEOPLE, photo_path
from lib_storyboard.framing.validate import validate_model, write_validation

pytest.importorskip("mediapipe")
W, H = 240, 320


def _shot(photo, box, i):
    """A frame of one shot: the crop drifting slowly (a held shot, not a still)."""
    x1, y1, x2, y2 = box
    crop = photo.crop((x1 + i // 4, y1, x2 + i // 4, y2)).resize((W, H))
    return cv2.cvtColor(np.asarray(crop), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    folder = tmp_path_factory.mktemp("film")
    bus = Image.open(photo_path("bus")).convert("RGB")
    a = PEOPLE[0]
    full = (a.cx - 160, a.top - 30, a.cx + 160, a.feet + 30)
    face = (a.cx - 55, a.top - 10, a.cx + 55, a.chin + 40)
    w = cv2.VideoWriter(str(folder / "film.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (W, H))
    for box in (full, face):
        for i in range(15):
            w.write(_shot(bus, box, i))
    w.release()
    return folder / "film.mp4"


def test_dataset_command_turns_a_film_into_a_dataset(film, tmp_path, capsys):
    out = tmp_path / "ds"
    rc = main(["dataset", "--source", str(film), "--out", str(out), "--sketch", "canny", "--frames-per-cut", "2",
               "--prefix", "Film_Still"])
    text = capsys.readouterr().out
    assert rc == 0, text
    scan = scan_folder(str(out))
    assert sorted((it.shot_key, it.tags[0]) for it in scan.items) == [("cu", "film still"), ("fs", "film still")]
    report = json.loads((out / "report.json").read_text())
    assert report["videos"] == [{"origin": "film.mp4", "frames": 30, "cuts": 2, "sampled": 4, "blank": 0}]
    assert [s["reason"] for s in report["skipped"]] == ["near-duplicate of an earlier image"] * 2
    assert "Wrote 2 images" in text and "contact_sheet.gif" in text


def test_bad_input_exits_2_with_one_sentence(tmp_path, capsys):
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    rc = main(["dataset", "--source", str(tmp_path / "junk.mp4"), "--out", str(tmp_path / "ds"), "--sketch", "none"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: None of the 1 source file(s)") and "cannot open or decode" in err
    assert err.count("\n") == 0 and not (tmp_path / "ds").exists()
    rc = main(["dataset", "--source", str(tmp_path), "--out", str(tmp_path / "ds"), "--sketch", "oil"])
    assert rc == 2 and "sketch" in capsys.readouterr().err
    rc = main(["validate", "--model", "toy", "--storyboard", str(tmp_path / "none.safetensors"), "--prompt", " ",
               "--out", str(tmp_path / "v")])
    assert rc == 2 and "at least one prompt" in capsys.readouterr().err


def test_classify_command(tmp_path, capsys):
    bus = Image.open(photo_path("bus")).convert("RGB")
    a = PEOPLE[1]
    bus.crop((a.cx - 150, a.top - 20, a.cx + 150, a.feet + 20)).save(tmp_path / "full.png")
    (tmp_path / "bad.png").write_bytes(b"x")
    assert main(["classify", str(tmp_path / "full.png"), str(tmp_path / "bad.png")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{tmp_path / 'full.png'}: full shot (") and "ankles visible" in lines[0]
    assert "skipped" in lines[1]


def test_validation_reads_each_tokens_panels(tmp_path):
    """The drawing is the caller's (host txt2img or diffusers); here it hands back photos framed as each token
    asks, so the trained matrix is diagonal, and a drawer that ignores the token gives the chance level."""
    bus = Image.open(photo_path("bus")).convert("RGB")
    a = PEOPLE[0]
    framed = {"<cu_trg>": (a.cx - 55, a.top - 10, a.cx + 55, a.chin + 40),
              "<ms_trg>": (a.cx - 120, a.top - 15, a.cx + 120, a.waist + 10),
              "<fs_trg>": (a.cx - 160, a.top - 30, a.cx + 160, a.feet + 30)}

    def draw(prompts, seeds):
        return [bus.crop(framed[p.split(",")[0]]) for p in prompts]

    def ignores_token(prompts, seeds):
        return [bus.crop(framed["<ms_trg>"]) for _ in prompts]

    v = validate_model(draw, ["a man in a coat"], per_token=1, baseline_draw=ignores_token)
    assert v.trained.accuracy == 1.0 and v.baseline.accuracy == pytest.approx(1 / 3)
    assert [p.prompt for p in v.panels] == ["<cu_trg>, a man in a coat", "<ms_trg>, a man in a coat",
                                           "<fs_trg>, a man in a coat"]
    files = write_validation(v, str(tmp_path / "val"))
    assert [f.rsplit("/", 1)[1] for f in files] == ["validation.json", "validation_sheet.png", "baseline_sheet.png"]
    assert json.loads(open(files[0]).read())["trained"]["accuracy"] == 1.0


def test_classify_with_a_yolo_person_model_file(tmp_path, capsys):
    """The optional YOLO path loads the user's file (a real YOLOv8n built here; random weights find nobody)."""
    pytest.importorskip("ultralytics")
    from ultralytics import YOLO

    YOLO("yolov8n.yaml").save(str(tmp_path / "person.pt"))
    Image.open(photo_path("coffee")).save(tmp_path / "coffee.png")
    assert main(["classify", str(tmp_path / "coffee.png"), "--yolo", str(tmp_path / "person.pt"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["label"] == "no person"
    assert main(["classify", str(tmp_path / "coffee.png"), "--yolo", str(tmp_path / "none.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
