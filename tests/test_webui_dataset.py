"""The dataset builder and validation in the real host (A1111 v1.10.1 on CPU, the toy base loaded), over HTTP: a
folder of real photos → POST /storyboard/v1/dataset → the folder the trainer reads → POST /storyboard/v1/train on it
→ POST /storyboard/v1/validate → the confusion matrix and the sheets; and the bad inputs, each one sentence with
nothing written. One host serves the module, started once; the tests run in file order.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from a1111_host import webui_or_skip

NAME = "sbds"
TRAIN = {"name": NAME, "resolution": 64, "batch_size": 2, "max_steps": 12, "vectors_per_token": 2, "rank": 4,
         "alpha": 4.0, "min_timestep": 700, "preview_every": 0, "save_every": 0}
VALIDATE = {"model": NAME, "prompts": ["a sketch of a person", "a person in a street"], "per_token": 2, "steps": 6,
            "cfg": 2, "width": 64, "height": 64, "sampler_name": "Euler"}


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    webui = webui_or_skip(tmp_path_factory, "a1111-dataset")
    install = webui.prepare()
    assert install["returncode"] == 0, install["output"]
    webui.data = make_sources(os.path.join(webui.root, "data"))
    webui.start("--api")
    yield webui
    webui.stop()


def make_sources(root: str) -> dict:
    """photos: close-ups, medium and full shots cut from package photos (astronaut, Grace Hopper, the bus scene)
    and one photo without a person; nobody: photos without people; video: a file that is no video; empty."""
    from lib_storyboard.framing.evalset import build_samples

    d = {k: os.path.join(root, k) for k in ("photos", "nobody", "video", "empty")}
    for folder in d.values():
        os.makedirs(folder)
    for s in build_samples():
        if s.shot_key and s.name.startswith(("astronaut", "grace_hopper", "bus")) and s.name.endswith("_a1.0"):
            s.image.save(os.path.join(d["photos"], s.name + ".jpg"), quality=92)
        elif s.shot_key is None and s.name in ("coffee", "chelsea"):
            s.image.save(os.path.join(d["nobody"], s.name + ".jpg"), quality=92)
            if s.name == "coffee":
                s.image.save(os.path.join(d["photos"], "coffee.jpg"), quality=92)
    with open(os.path.join(d["video"], "clip.mp4"), "wb") as f:
        f.write(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))   # an MP4 header, then noise
    return d


def one_sentence(msg: str) -> None:
    assert msg and msg.endswith(".") and "\n" not in msg and "Traceback" not in msg, msg


def no_absolute_paths(obj, where: str) -> None:
    text = json.dumps(obj)
    for marker in (os.sep + "tmp", os.path.expanduser("~")):
        assert marker not in text, f"{where} shows a server path: {text[:300]}"


def refused(host, path: str, body, field: str, words: str, status: int = 422) -> None:
    st, r = host.post(path, body)
    assert st == status and [d["loc"][-1] for d in r["detail"]] == [field], (st, r)
    one_sentence(r["error"])
    assert words in r["error"], r["error"]
    no_absolute_paths(r, "the refusal")


def failed_job(host, body) -> str:
    st, r = host.post("/storyboard/v1/dataset", body)
    assert st == 200, r
    job = host.wait_job(r["job_id"])
    assert job["state"] == "failed" and len(job["errors"]) == 1, job
    one_sentence(job["errors"][0])
    no_absolute_paths(job, "the failed job")
    return job["errors"][0]


def test_the_dataset_section_is_in_the_tab(host):
    st, config = host.get("/config")
    ids = {c.get("props", {}).get("elem_id") for c in config["components"]}
    assert {"storyboard_dataset_section", "storyboard_dataset_build", "storyboard_dataset_use",
            "storyboard_validate", "storyboard_validate_sheets"} <= ids
    assert "Traceback" not in host.log(), host.log_tail()


def test_bad_inputs_answer_one_sentence_and_write_nothing(host):
    d, out = host.data, os.path.join(host.root, "data", "out")
    refused(host, "/storyboard/v1/dataset", {"source": d["empty"], "out": out}, "source", "holds no images")
    refused(host, "/storyboard/v1/dataset", {"source": d["photos"], "out": out, "interrogate": "deepbooru"},
            "interrogate", "DeepBooru interrogator's model is not available")
    refused(host, "/storyboard/v1/dataset", {"source": d["photos"], "out": out, "interrogate": "clip"},
            "interrogate", "CLIP interrogator's model is not available")
    refused(host, "/storyboard/v1/dataset", {"source": d["photos"], "out": d["nobody"]}, "out", "is not empty")
    refused(host, "/storyboard/v1/dataset", {"source": d["photos"], "out": out, "sketch": "pencil"}, "sketch",
            "must be one of")
    refused(host, "/storyboard/v1/dataset", {"source": d["photos"], "out": out, "colour": 1}, "colour",
            "not a dataset field")
    st, r = host.call("POST", "/storyboard/v1/dataset", b"{not json")
    assert st == 422 and r["error"].startswith("The request body is not valid JSON"), r

    assert "no person" in failed_job(host, {"source": d["nobody"], "out": out})
    assert "gave a usable image" in failed_job(host, {"source": d["video"], "out": out})
    assert not os.path.exists(out)

    # A read-only output folder: root writes through a chmod, so the folder is made immutable where root runs this.
    ro = os.path.join(host.root, "data", "readonly")
    os.makedirs(ro)
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", ro], capture_output=True).returncode != 0:
            pytest.skip("running as root on a file system without chattr +i: a read-only folder cannot be made")
    else:
        os.chmod(ro, 0o555)
    try:
        st, r = host.post("/storyboard/v1/dataset", {"source": d["photos"], "out": os.path.join(ro, "ds")})
        if st == 200:   # the access check passed; the write fails in the job
            job = host.wait_job(r["job_id"])
            assert job["state"] == "failed", job
            one_sentence(job["errors"][0])
        else:
            assert st == 422 and r["detail"][0]["loc"][-1] == "out", r
            one_sentence(r["error"])
            assert "read-only" in r["error"] or "permission" in r["error"], r
        assert os.listdir(ro) == []
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", ro], check=True)
    refused(host, "/storyboard/v1/validate", {**VALIDATE, "model": "nobody-trained-this"}, "model", "was not found")
    refused(host, "/storyboard/v1/validate", {**VALIDATE, "per_token": 0}, "per_token", "between 1 and 64")
    assert not os.path.exists(os.path.join(host.dir, "outputs", "storyboard-validation"))


# A DeepDanbooru model of the host's own architecture (modules/deepbooru_model.py), random but for its last layer,
# which makes two tags win on any picture: the WebUI's real interrogator code runs, offline.
MAKE_DEEPBOORU = """
import os, sys, torch
sys.path.insert(0, os.environ["WEBUI_DIR"])   # not argv: importing the host's modules parses the command line
from modules.deepbooru_model import DeepDanbooruModel
torch.manual_seed(0)
m = DeepDanbooruModel()
w = -torch.ones_like(m.n_Conv_178.weight) * 1e-3
w[:2] = 1e-3                      # the features after the last ReLU are >= 0: these two score above 0.5, the rest below
m.n_Conv_178.weight.data = w
sd = m.state_dict()
sd["tags"] = ["drawn_by_deepbooru", "test_tag"] + [f"tag_{i}" for i in range(2, w.shape[0])]
torch.save(sd, os.environ["MODEL_FILE"])
"""


def test_deepbooru_tags_come_from_the_webuis_own_interrogator(host):
    folder = os.path.join(host.dir, "models", "torch_deepdanbooru")
    os.makedirs(folder, exist_ok=True)
    subprocess.run([host.python, "-c", MAKE_DEEPBOORU], check=True, capture_output=True, cwd=host.dir,
                   env={**os.environ, "WEBUI_DIR": host.dir,
                        "MODEL_FILE": os.path.join(folder, "model-resnet_custom_v3.pt")})
    source, out = os.path.join(host.root, "data", "three"), os.path.join(host.root, "data", "tagged")
    os.makedirs(source)
    for name in sorted(os.listdir(host.data["photos"]))[:3]:
        shutil.copy(os.path.join(host.data["photos"], name), source)
    st, r = host.post("/storyboard/v1/dataset", {"source": source, "out": out, "interrogate": "deepbooru",
                                                 "prefix": "sketch", "blacklist": "test tag"})
    assert st == 200, r
    job = host.wait_job(r["job_id"])
    assert job["state"] == "finished", job
    tags = []
    for image in job["report"]["images"]:
        with open(os.path.join(out, image["file"][:-4] + ".txt"), encoding="utf-8") as f:
            tags.append(f.read().strip())
    # The shot first, the prefix, then the interrogator's tags cleaned (underscores as spaces, blacklist applied).
    assert tags and all(t.endswith(", sketch, drawn by deepbooru") for t in tags), tags
    assert "Traceback" not in host.log(), host.log_tail()


def test_photos_to_dataset_to_training_to_validation(host):
    from lib_storyboard.dataset.scan import scan_folder

    out = os.path.join(host.root, "data", "my-dataset")
    st, schema = host.get("/storyboard/v1/dataset/schema")
    assert st == 200 and schema["properties"]["sketch"]["default"] == "lineart_standard", schema
    st, r = host.post("/storyboard/v1/dataset", {"source": host.data["photos"], "out": out,
                                                 "prefix": "storyboard sketch, astronaut", "max_side": 512})
    assert st == 200 and r["job_id"].startswith("sb-d"), r
    job = host.wait_job(r["job_id"])
    assert job["state"] == "finished", job
    no_absolute_paths(job, "the dataset job")
    rep = job["report"]
    print("\n".join(rep["report"]))
    assert rep["out"] == "my-dataset" and rep["counts"]["cu"] and rep["counts"]["ms"], rep["counts"]
    assert any(s["origin"] == "coffee.jpg" and s["reason"].startswith("no person") for s in rep["skipped"]), rep
    assert sorted(os.listdir(out)) == sorted(["report.json", "contact_sheet.gif"] +
                                             [f"10_{k}" for k, n in rep["counts"].items() if n])
    scan = scan_folder(out)
    assert len(scan.items) == len(rep["images"]) and not scan.skipped, scan.as_dict()
    first = rep["images"][0]
    with open(os.path.join(out, first["file"][:-4] + ".txt"), encoding="utf-8") as f:
        label = {"cu": "close-up", "ms": "medium shot", "fs": "full shot"}[first["shot"]]
        assert f.read().startswith(f"{label}, storyboard sketch, astronaut")

    st, r = host.post("/storyboard/v1/train", {**TRAIN, "data_dir": out})
    assert st == 200, r
    job = host.wait_job(r["job_id"])
    assert job["state"] == "finished" and job["step"] == TRAIN["max_steps"], job
    assert job["report"]["used"] == len(rep["images"]), job["report"]

    st, r = host.post("/storyboard/v1/validate", VALIDATE)
    assert st == 200 and r["job_id"].startswith("sb-v"), r
    job = host.wait_job(r["job_id"])
    assert job["state"] == "finished" and (job["step"], job["total"]) == (12, 12), job
    no_absolute_paths(job, "the validation job")
    report = job["report"]
    print("\n".join(report["lines"]))
    assert report["trained"]["total"] == 6 and report["baseline"]["total"] == 6, report
    folder = os.path.join(host.dir, report["folder"])
    assert report["folder"].startswith("outputs/storyboard-validation/") and report["folder"].endswith("-" + NAME)
    assert sorted(os.listdir(folder)) == ["baseline_sheet.png", "validation.json", "validation_sheet.png"]
    assert sorted(job["files"]) == sorted(f"{report['folder']}/{f}" for f in os.listdir(folder))
    with open(os.path.join(folder, "validation.json"), encoding="utf-8") as f:
        saved = json.load(f)
    # The chance level: the same prompts and seeds, drawn with the untrained tokens (and no LoRA).
    assert [p["prompt"] for p in saved["baseline_panels"]] == [p["prompt"] for p in saved["panels"]]
    assert report["chance_level"] == "the same prompts and seeds with the untrained tokens and no LoRA", report
    assert saved["panels"][0]["prompt"] == "<cu_trg>, a sketch of a person", saved["panels"][0]
    kinds = [j["kind"] for j in host.get("/storyboard/v1/jobs")[1]["jobs"]]
    assert {"dataset", "train", "validate"} <= set(kinds), kinds


def test_an_open_network_host_builds_only_inside_its_folder(host):

    host.stop()
    host.start("--api", "--listen")
    outside = {"source": host.data["photos"], "out": os.path.join(host.dir, "datasets", "mine")}
    st, r = host.post("/storyboard/v1/dataset", outside)
    assert st == 403 and [d["loc"][-1] for d in r["detail"]] == ["source"] and "--api-auth" in r["error"], r
    no_absolute_paths(r, "the 403")
    inside = os.path.join(host.dir, "datasets", "photos")
    os.makedirs(inside)
    for name in sorted(os.listdir(host.data["photos"]))[:2]:
        shutil.copy(os.path.join(host.data["photos"], name), inside)
    st, r = host.post("/storyboard/v1/dataset", {"source": inside, "out": os.path.join(host.root, "data", "x")})
    assert st == 403 and [d["loc"][-1] for d in r["detail"]] == ["out"], r
    assert not os.path.exists(os.path.join(host.root, "data", "x"))
    st, r = host.post("/storyboard/v1/dataset", {"source": "datasets/photos", "out": "datasets/mine"})
    assert st == 200, r
    job = host.wait_job(r["job_id"])
    assert job["state"] == "finished" and job["config"]["out"] == "datasets/mine", job
    assert os.path.isfile(os.path.join(host.dir, "datasets", "mine", "report.json"))
