"""The WebUI path in the real host: A1111 v1.10.1 on CPU with the toy base as its checkpoint, this extension installed
from a git clone, everything driven over HTTP as users' scripts drive it.

The tests share one host (started once, restarted near the end) and run in file order: training first, then what
needs the trained model. Where no A1111 source is available the module skips with one line saying why.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import threading
import time

import numpy as np
import pytest
from PIL import Image

from a1111_host import webui_or_skip

NAME = "sbci"
GEN = {"width": 64, "height": 64, "steps": 8, "sampler_name": "Euler", "cfg_scale": 2, "seed": 5}
TRIGGERS = {"args": [NAME]}
TRAIN = {"name": NAME, "resolution": 64, "batch_size": 4, "max_steps": 24, "vectors_per_token": 2, "rank": 4,
         "alpha": 4.0, "ti_lr": 1.5e-2, "unet_lr": 3e-3, "min_timestep": 700, "preview_every": 12, "preview_steps": 4,
         "save_every": 0}
AUTH = "sbuser:sb-secret"


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    webui = webui_or_skip(tmp_path_factory, "a1111")
    root = webui.root
    webui.install = webui.prepare()
    from lib_storyboard.toyworld.sketches import write_dataset
    webui.data = os.path.join(root, "sketches")
    write_dataset(webui.data, n_per_shot=8, size=64, seed=3)
    webui.start("--api")
    yield webui
    webui.stop()


def image_of(result, i: int = 0) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(result["images"][i]))).convert("RGB"))


def digest(result) -> str:
    return hashlib.sha256(image_of(result).tobytes()).hexdigest()


def infotext(result) -> str:
    return json.loads(result["info"])["infotexts"][0]


def txt2img(host, prompt: str, model: str | None = NAME, **extra):
    body = {**GEN, "prompt": prompt, **extra}
    if model is not None:
        body["alwayson_scripts"] = {"storyboard triggers": {"args": [model]}}
    st, r = host.post("/sdapi/v1/txt2img", body)
    assert st == 200, (st, r)
    return r


def no_absolute_paths(obj, where: str) -> None:
    text = json.dumps(obj)
    for marker in (os.sep + "tmp", os.path.expanduser("~"), "webui" + os.sep + "models"):
        assert marker not in text, f"{where} shows a server path: {text[:300]}"


def test_install_from_clone_keeps_every_host_package(host):
    inst = host.install
    assert inst["returncode"] == 0, inst["output"]
    assert inst["before"] == inst["after"], "install.py changed the host's packages"
    assert "Traceback" not in host.log(), host.log_tail()
    st, exts = host.get("/sdapi/v1/extensions")
    assert st == 200 and any(e["name"] == "sd-webui-storyboard" and e["enabled"] for e in exts), exts


def test_refusals_name_each_field_and_change_nothing(host):
    st, body = host.post("/storyboard/v1/train", {"name": "bad name!", "data_dir": "/nonexistent",
                                                  "max_steps": "x", "rank": 0})
    assert st == 422
    assert sorted(d["loc"][-1] for d in body["detail"]) == ["data_dir", "max_steps", "name", "rank"]
    assert all(d["msg"].endswith(".") for d in body["detail"])
    assert host.get("/storyboard/v1/jobs")[1]["jobs"] == []
    st, schema = host.get("/storyboard/v1/train/schema")
    steps = schema["properties"]["max_steps"]
    assert st == 200 and (steps["title"], steps["minimum"], steps["maximum"]) == ("Steps", 1, 1_000_000), steps
    assert schema["properties"]["preset"]["enum"] == ["low-vram", "balanced", "quality"]


def test_train_writes_the_model_the_host_lists(host):
    st, body = host.post("/storyboard/v1/train", {**TRAIN, "data_dir": host.data})
    assert st == 200 and body["state"] == "queued", body
    seen, textinfos = set(), set()
    while True:
        st, job = host.get(f"/storyboard/v1/jobs/{body['job_id']}")
        seen.add(job["step"])
        if job["state"] == "running":
            textinfos.add(host.get("/sdapi/v1/progress")[1]["textinfo"] or "")
        if job["state"] not in ("queued", "running"):
            break
        time.sleep(0.3)
    assert job["state"] == "finished" and job["step"] == TRAIN["max_steps"], job
    assert len(seen) > 2, f"progress was not visible while training: steps seen {sorted(seen)}"
    assert any(f"Storyboard {NAME}" in t for t in textinfos), textinfos
    no_absolute_paths(job, "the job")
    files = job["files"]
    for rel in (f"models/Lora/{NAME}.safetensors", f"models/Lora/{NAME}.json", f"models/Lora/{NAME}.preview.png",
                f"embeddings/{NAME}-cu_trg.safetensors", f"embeddings/{NAME}-fs_trg.safetensors"):
        assert rel in files, files
        assert os.path.isfile(os.path.join(host.dir, rel))
    assert os.path.isdir(os.path.join(host.dir, "models", "storyboard", "state", NAME))

    models = host.get("/storyboard/v1/models")[1]["models"]
    assert [m["name"] for m in models] == [NAME]
    no_absolute_paths(models, "the model list")
    host.post("/sdapi/v1/refresh-loras")
    assert any(lo["name"] == NAME for lo in host.get("/sdapi/v1/loras")[1])
    loaded = host.get("/sdapi/v1/embeddings")[1]["loaded"]
    shapes = {k: v["shape"] for k, v in loaded.items() if k.startswith(NAME + "-")}
    assert sorted(shapes) == [f"{NAME}-cu_trg", f"{NAME}-fs_trg", f"{NAME}-ms_trg"] and len(set(shapes.values())) == 1


def test_each_trigger_applies_the_model_and_pastes_back(host):
    plain = txt2img(host, "a sketch of a person waving", model=None)
    seen = {}
    for trig in ("<cu_trg>", "<ms_trg>", "<fs_trg>"):
        r = txt2img(host, f"{trig}, a sketch of a person waving")
        info = infotext(r)
        assert f"Storyboard model: {NAME}" in info and f"<lora:{NAME}:1>" in info, info
        seen[trig] = digest(r)
    assert len(set(seen.values())) == 3 and digest(plain) not in seen.values()
    # A model the host does not have: one sentence (under the image in the UI, in the log), no model applied.
    r = txt2img(host, "<cu_trg>, a sketch of a person waving", model="none-such")
    assert "[storyboard] Storyboard model 'none-such' was not found." in host.log()
    assert "Storyboard model" not in infotext(r) and digest(r) != seen["<cu_trg>"]
    # Paste-back: the infotext alone (PNG info → txt2img) gives the same picture.
    r = txt2img(host, "<fs_trg>, a sketch of a person waving")
    st, pi = host.post("/sdapi/v1/png-info", {"image": r["images"][0]})
    assert st == 200 and pi["parameters"].get("Storyboard model") == NAME, pi
    st, again = host.post("/sdapi/v1/txt2img", {"infotext": pi["info"], "width": 64, "height": 64})
    assert st == 200 and digest(again) == digest(r), infotext(again)


def test_detailer_through_alwayson_scripts(host):
    from skimage import data
    size = 128
    astronaut = Image.fromarray(data.astronaut()).resize((size, size), Image.LANCZOS)
    buf = io.BytesIO()
    astronaut.save(buf, format="PNG")
    one_pass = {"detector": "mediapipe_face_short", "inpaint_width": 64, "inpaint_height": 64, "denoise": 0.6,
                "prompt": "[PROMPT], <cu_trg>, detailed face"}
    body = {"prompt": "<ms_trg>, an astronaut", "steps": 4, "sampler_name": "Euler", "seed": 11, "width": size,
            "height": size, "denoising_strength": 0.5, "init_images": [base64.b64encode(buf.getvalue()).decode()],
            "alwayson_scripts": {"storyboard detailer": {"args": [True, one_pass, True]},
                                 "storyboard triggers": TRIGGERS}}
    st, r = host.post("/sdapi/v1/img2img", body)
    assert st == 200, r
    info = infotext(r)
    assert "Storyboard detailer 1:" in info and "Storyboard detailer detail-only: True" in info, info
    changed = np.abs(image_of(r).astype(int) - np.asarray(astronaut).astype(int)).sum(-1) > 0
    ys, xs = np.nonzero(changed)
    assert changed.mean() > 0.02 and 0 < xs.mean() < size and ys.mean() < size * 0.6, "the face was not redrawn"
    assert not changed[-10:, :].any(), "pixels far from the face changed"
    bad = {**body, "alwayson_scripts": {"storyboard detailer": {"args": [True, {**one_pass, "denoise": 3}]}}}
    st, r = host.post("/sdapi/v1/img2img", bad)
    assert st == 422 and "denoise" in json.dumps(r), r


BOARD_SCENES = ('cu | a girl looks up at the rain | "It\'s here."\nms | she opens her umbrella | "Finally."\n'
                '- | the empty street |\nfs | she runs | "Wait!"\ncu | her smile | "사랑해"\n'
                'ms | the bus arrives | "Come on."\n')
BOARD = {"scenes": BOARD_SCENES, "title": "Rain day", "seed": 3, "seed_policy": "per_panel", "steps": 6, "cfg": 2,
         "width": 64, "height": 64, "panel_width": 96, "sampler_name": "Euler", "storyboard_model": NAME,
         "detailer": True}


def _png(host, board: str, file: str) -> bytes:
    st, data = host.call("GET", f"/storyboard/v1/boards/{board}/files/{file}", raw=True)
    assert st == 200, (st, data)
    return data


def test_a_pose_over_the_api_is_the_one_the_tab_draws(host):
    from lib_storyboard.composition import pose_image

    st, r = host.post("/storyboard/v1/pose", {"pose": "two", "shot": "cu", "width": 96, "height": 64})
    assert st == 200 and r["source"] == "drawn" and (r["width"], r["height"]) == (96, 64), (st, r)
    got = Image.open(io.BytesIO(base64.b64decode(r["image"]))).convert("RGB")
    assert np.array_equal(np.asarray(got), np.asarray(pose_image("two", "cu", 96, 64)))


def test_a_board_draws_each_panel_through_txt2img_and_redraws_one(host):
    boards = os.path.join(host.dir, "outputs", "storyboard-boards")
    st, r = host.post("/storyboard/v1/board", {**BOARD, "scenes": "cu | a face |\nxx | a hand |\nms |  | hi",
                                               "steps": 0})
    assert st == 422 and {d["loc"][-1] for d in r["detail"]} == {"scenes", "steps"}, r
    assert "Line 2: unknown shot 'xx'" in r["error"] and "Line 3: the description is empty." in r["error"], r
    assert not os.path.exists(boards)

    st, r = host.post("/storyboard/v1/board", BOARD)
    assert st == 200, r
    job = host.wait_job(r["job_id"])
    assert job["state"] == "finished" and (job["step"], job["total"]) == (6, 6), job
    no_absolute_paths(job, "the board job")
    name = job["report"]["board"]
    assert name.endswith("-rain-day") and job["report"]["not_drawn"] == []
    folder = os.path.join(boards, name)
    assert sorted(os.listdir(folder)) == ["board.json", "board.pdf", "board.png"] + \
        [f"panel-00{i}.png" for i in range(1, 7)]
    assert f"outputs/storyboard-boards/{name}/panel-001.png" in job["files"], job["files"]
    texts = [Image.open(os.path.join(folder, f"panel-00{i}.png")).text["parameters"] for i in range(1, 7)]
    for i, text in enumerate(texts):
        assert f"Seed: {3 + i}," in text and "Sampler: Euler" in text and "Size: 64x64" in text, text
        assert f"<lora:{NAME}:1>" in text and "Storyboard detailer 1:" in text, text
        assert (f"Storyboard model: {NAME}" in text) == (i != 2), text     # panel 3 has no shot trigger
    assert texts[0].startswith("<cu_trg>, a girl looks up at the rain <lora"), texts[0]
    assert texts[2].startswith(f"the empty street <lora:{NAME}:1>\n"), texts[2]   # in the style all the same
    assert _png(host, name, "board.png") == open(os.path.join(folder, "board.png"), "rb").read()
    assert host.get(f"/storyboard/v1/boards/{name}/files/..%2Fboard.json")[0] == 404
    listed = host.get("/storyboard/v1/boards")[1]
    assert [b["name"] for b in listed["boards"]] == [name] and listed["folder"] == "outputs/storyboard-boards"
    st, data = host.get(f"/storyboard/v1/boards/{name}")
    assert st == 200 and data["scene_list"]["scenes"][4]["dialogue"] == '"사랑해"', data
    no_absolute_paths(data, "the board")

    # Paste-back: a panel's infotext alone (PNG Info -> txt2img) draws the same picture.
    panel1 = base64.b64encode(open(os.path.join(folder, "panel-001.png"), "rb").read()).decode()
    st, pi = host.post("/sdapi/v1/png-info", {"image": panel1})
    st, again = host.post("/sdapi/v1/txt2img", {"infotext": pi["info"], "width": 64, "height": 64})
    assert st == 200 and np.array_equal(image_of(again), np.asarray(Image.open(os.path.join(folder, "panel-001.png"))
                                                                     .convert("RGB"))), infotext(again)

    before = {f: open(os.path.join(folder, f), "rb").read() for f in os.listdir(folder)}
    st, r = host.post(f"/storyboard/v1/boards/{name}/panels/2/redraw", {"seed": 99})
    assert st == 200, r
    job = host.wait_job(r["job_id"])
    assert job["state"] == "finished" and job["report"]["seed"] == 99, job
    after = {f: open(os.path.join(folder, f), "rb").read() for f in os.listdir(folder)}
    assert {f for f in after if after[f] != before[f]} == {"panel-002.png", "board.png", "board.pdf", "board.json"}
    assert "Seed: 99," in Image.open(os.path.join(folder, "panel-002.png")).text["parameters"]
    assert host.post(f"/storyboard/v1/boards/{name}/panels/9/redraw", {})[0] == 422
    assert host.post("/storyboard/v1/boards/no-such-board/panels/1/redraw", {})[0] == 404


def _wait_step(host, job_id: str, step: int) -> dict:
    deadline = time.time() + 300
    while time.time() < deadline:
        job = host.get(f"/storyboard/v1/jobs/{job_id}")[1]
        if job["step"] >= step or job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached step {step}")


def test_interrupting_a_board_keeps_its_finished_panels_and_skip_only_ends_one(host):
    slow = {**BOARD, "title": "Slow", "steps": 50, "detailer": False,
            "scenes": "\n".join(f"{s} | scene {i}" for i, s in enumerate(["cu", "ms", "fs", "cu", "ms"], 1))}
    st, r = host.post("/storyboard/v1/board", slow)
    assert st == 200, r
    _wait_step(host, r["job_id"], 1)
    assert host.post("/sdapi/v1/skip")[0] == 200          # the host's Skip: ends this panel, not the board
    job = _wait_step(host, r["job_id"], 3)
    assert job["state"] == "running", job
    host.post(f"/storyboard/v1/jobs/{r['job_id']}/cancel")
    job = host.wait_job(r["job_id"])
    assert job["state"] == "interrupted" and job["message"].startswith("Stopped after"), job
    name, not_drawn = job["report"]["board"], job["report"]["not_drawn"]
    done = 5 - len(not_drawn)
    assert 3 <= done < 5 and not_drawn == list(range(done + 1, 6)), job
    folder = os.path.join(host.dir, "outputs", "storyboard-boards", name)
    assert sorted(f for f in os.listdir(folder) if f.startswith("panel")) == \
        [f"panel-00{i}.png" for i in range(1, done + 1)]
    # A panel that was never drawn is drawn with its planned seed (base seed 3 + its index, per panel).
    st, r = host.post(f"/storyboard/v1/boards/{name}/panels/5/redraw", {})
    job = host.wait_job(r["job_id"])
    assert job["state"] == "finished" and job["report"]["seed"] == 3 + 4, job
    assert "Seed: 7," in Image.open(os.path.join(folder, "panel-005.png")).text["parameters"]


def test_cancel_of_a_waiting_job_leaves_the_running_generation_alone(host):
    slow = {**GEN, "steps": 60, "batch_size": 4, "prompt": "a sketch of a street", "seed": 9}
    reference = digest(host.post("/sdapi/v1/txt2img", slow)[1])
    out = {}
    gen = threading.Thread(target=lambda: out.setdefault("r", host.post("/sdapi/v1/txt2img", slow)[1]))
    gen.start()
    deadline = time.time() + 60
    while host.get("/sdapi/v1/progress")[1]["state"]["job_count"] == 0 and time.time() < deadline:
        time.sleep(0.05)
    st, body = host.post("/storyboard/v1/train", {**TRAIN, "name": "waiting", "data_dir": host.data})
    assert st == 200
    time.sleep(0.5)
    st, job = host.get(f"/storyboard/v1/jobs/{body['job_id']}")
    assert job["state"] == "queued" and gen.is_alive(), job
    st, job = host.post(f"/storyboard/v1/jobs/{body['job_id']}/cancel")
    gen.join(300)
    assert digest(out["r"]) == reference, "cancelling a waiting training job interrupted the generation"
    job = host.wait_job(body["job_id"])
    assert job["state"] == "cancelled" and job["step"] == 0, job
    assert not os.path.exists(os.path.join(host.dir, "models", "Lora", "waiting.safetensors"))


def test_cancel_of_a_running_job_keeps_what_it_learned(host):
    st, body = host.post("/storyboard/v1/train", {**TRAIN, "name": "stopped", "data_dir": host.data,
                                                  "max_steps": 5000, "preview_every": 0})
    assert st == 200
    host.wait_job(body["job_id"], until=("running",))
    st, second = host.post("/storyboard/v1/train", {**TRAIN, "name": "second", "data_dir": host.data})
    assert st == 409 and body["job_id"] in second["error"], second
    while host.get(f"/storyboard/v1/jobs/{body['job_id']}")[1]["step"] < 3:
        time.sleep(0.2)
    host.post(f"/storyboard/v1/jobs/{body['job_id']}/cancel")
    job = host.wait_job(body["job_id"])
    assert job["state"] == "interrupted" and 3 <= job["step"] < 5000, job
    assert "models/Lora/stopped.safetensors" in job["files"]
    # The host is free again: a generation with the interrupted model runs and records it.
    assert "Storyboard model: stopped" in infotext(txt2img(host, "<cu_trg>, a sketch", model="stopped"))


def test_restart_keeps_everything_and_auth_guards_the_routes(host):
    before = digest(txt2img(host, "<ms_trg>, a sketch of a person waving"))
    host.stop()
    host.start("--api", "--api-auth", AUTH, auth=AUTH)
    st, _ = host.get("/storyboard/v1/models", auth=False)
    assert st == 401
    st, models = host.get("/storyboard/v1/models")
    assert st == 200 and {m["name"] for m in models["models"]} >= {NAME, "stopped"}, models
    assert host.post("/storyboard/v1/train", {**TRAIN, "data_dir": host.data}, auth=False)[0] == 401
    assert digest(txt2img(host, "<ms_trg>, a sketch of a person waving")) == before
    # Resume continues the interrupted run from its saved step.
    st, body = host.post("/storyboard/v1/train", {**TRAIN, "name": "stopped", "data_dir": host.data,
                                                  "max_steps": 5000, "preview_every": 0, "resume": True})
    assert st == 200, body
    restored = next(m["step"] for m in models["models"] if m["name"] == "stopped")
    deadline = time.time() + 120
    while host.get(f"/storyboard/v1/jobs/{body['job_id']}")[1]["step"] <= restored and time.time() < deadline:
        time.sleep(0.2)
    host.post(f"/storyboard/v1/jobs/{body['job_id']}/cancel")
    job = host.wait_job(body["job_id"])
    assert job["state"] == "interrupted" and job["step"] > restored, (restored, job)


def test_untrainable_host_answers_409_and_an_open_network_host_reads_only_its_folder(host):
    import shutil
    host.stop()
    host.start("--api", "--lowvram", "--listen")
    st, body = host.post("/storyboard/v1/train", {**TRAIN, "data_dir": host.data})
    assert st == 403 and "--api-auth" in body["error"] and host.data not in json.dumps(body), body
    inside = os.path.join(host.dir, "datasets", "sketches")
    shutil.copytree(host.data, inside)
    st, body = host.post("/storyboard/v1/train", {**TRAIN, "data_dir": inside})
    assert st == 409 and body["error"] == ("Training is not possible with --lowvram; restart the WebUI without it "
                                           "(--medvram works, more slowly)."), body
    assert host.get("/storyboard/v1/jobs")[1]["jobs"] == []


def test_gradio_login_guards_the_routes_when_there_is_no_api_auth(host):
    host.stop()
    host.start("--api", "--gradio-auth", AUTH, auth=AUTH)
    assert host.get("/storyboard/v1/models", auth=False)[0] == 401
    assert host.get("/storyboard/v1/detailer/models", auth=False)[0] == 401
    st, body = host.get("/storyboard/v1/detailer/models")
    assert st == 200 and any(m["name"] == "mediapipe_face_short" for m in body["models"])
    no_absolute_paths(body, "the detector list")


def test_without_api_flag_no_storyboard_routes(host):
    host.stop()
    host.start()
    assert host.get("/storyboard/v1/models")[0] == 404
    assert host.get("/storyboard/v1/detailer/schema")[0] == 404
