"""Bad inputs through the HTTP API of the real host (A1111 v1.10.1 on CPU, the toy base loaded), one kind per case.

Every refusal must be one clear sentence (a 4xx answer's "error"/"detail", or a failed job's errors) that names the
field or the problem, with no traceback and no absolute server path; nothing may be written or left half-written
anywhere under the WebUI folder (nor in the dataset folders), and the host must be as it was: the same options,
loaded embeddings, models and a fixed-seed generation with identical pixels.

One host serves the file, started once; the last tests restart it with a per-file size limit (RLIMIT_FSIZE: a write
past it fails with EFBIG, as on a full disk) to check that a failed save leaves no file and no half-replaced set.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import resource
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from a1111_host import webui_or_skip

TRAIN = {"resolution": 64, "batch_size": 4, "max_steps": 3, "rank": 4, "alpha": 4.0, "preview_every": 0,
         "save_every": 0}
PROBE = {"prompt": "<ms_trg>, a sketch of a person waving", "width": 64, "height": 64, "steps": 4,
         "sampler_name": "Euler", "cfg_scale": 2, "seed": 7}
PASS = {"detector": "mediapipe_face_short", "inpaint_width": 64, "inpaint_height": 64}
# Per-file size limit of the disk-full host: above what the host writes to start and a toy model's LoRA (~0.4 MB),
# below its training state (~1.9 MB), so a save fails halfway through the set of files it writes.
DISK_LIMIT = 1 << 20
# What the host itself rewrites on every generation, and its caches: not ours to compare.
NOT_COMPARED = {"repositories", "cache", "__pycache__", ".git", "params.txt"}


# -- the host and the datasets ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def host(tmp_path_factory):
    webui = webui_or_skip(tmp_path_factory, "a1111-bad")
    root = webui.root
    install = webui.prepare()
    assert install["returncode"] == 0, install["output"]
    webui.data = make_datasets(os.path.join(root, "data"))
    webui.start("--api")
    yield webui
    webui.stop()


def make_datasets(root: str) -> dict:
    from lib_storyboard.toyworld.sketches import write_dataset

    d = {k: os.path.join(root, k) for k in ("good", "empty", "unlabelled", "conflict", "corrupt", "tiny", "deep")}
    write_dataset(d["good"], n_per_shot=4, size=64, seed=3)
    panels = sorted(f[:-4] for f in os.listdir(d["good"]) if f.endswith(".png"))
    for k in d:
        os.makedirs(d[k], exist_ok=True)

    def panel(i):
        return Image.open(os.path.join(d["good"], panels[i] + ".png")).convert("RGB")

    def tags(i):
        with open(os.path.join(d["good"], panels[i] + ".txt"), encoding="utf-8") as f:
            return f.read()

    def write(folder, stem, text):
        with open(os.path.join(folder, stem + ".txt"), "w", encoding="utf-8") as f:
            f.write(text)

    for i in range(3):
        panel(i).save(os.path.join(d["unlabelled"], f"u{i}.png"))           # a readable image, no tag file
        panel(i).save(os.path.join(d["conflict"], f"k{i}.png"))
        write(d["conflict"], f"k{i}", "close-up, full shot, a sketch")
        with open(os.path.join(d["good"], panels[i] + ".png"), "rb") as f:
            whole = f.read()
        with open(os.path.join(d["corrupt"], f"c{i}.png"), "wb") as f:
            f.write(whole[: len(whole) // 2])                                  # cut short by a failed copy
        write(d["corrupt"], f"c{i}", "close-up, a sketch")
        panel(i).resize((16, 16)).save(os.path.join(d["tiny"], f"t{i}.png"))
        write(d["tiny"], f"t{i}", "full shot")
    with open(os.path.join(d["corrupt"], "noise.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0" + np.random.default_rng(0).bytes(300))   # a JPEG header, then noise
    write(d["corrupt"], "noise", "medium shot")
    # 16-bit greyscale PNGs, 48-bit RGB PNGs and CMYK JPEGs, one kind per shot in turn.
    for i in range(len(panels)):
        img, stem = panel(i), f"d{i:02d}"
        if i % 3 == 0:
            grey = np.asarray(img.convert("L")).astype(np.uint16) * 257
            Image.fromarray(grey).save(os.path.join(d["deep"], stem + ".png"))
        elif i % 3 == 1:
            write_png48(os.path.join(d["deep"], stem + ".png"), np.asarray(img).astype(np.uint16) * 257)
        else:
            img.convert("CMYK").save(os.path.join(d["deep"], stem + ".jpg"), quality=95)
        write(d["deep"], stem, tags(i))
    d["a_file"] = os.path.join(d["good"], panels[0] + ".png")
    d["nowhere"] = os.path.join(root, "nowhere")
    return d


def write_png48(path: str, rgb16: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG (Pillow opens these but cannot write them)."""
    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# -- what must not change ---------------------------------------------------------------------------------------
def files_under(*roots: str) -> dict:
    """path → (size, mtime) of every file under the roots, and path → (None, None) of every folder (a folder's
    mtime moves whenever a file is created in it, also a temporary one that is gone again)."""
    out = {}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = [x for x in dirs if x not in NOT_COMPARED]
            for name in dirs:
                out[os.path.join(folder, name)] = (None, None)
            for name in files:
                if name not in NOT_COMPARED:
                    st = os.stat(os.path.join(folder, name))
                    out[os.path.join(folder, name)] = (st.st_size, st.st_mtime_ns)
    return out


def disk(host) -> dict:
    return files_under(host.dir, os.path.join(host.root, "data"))


def observe(host) -> dict:
    """What a bad input must leave as it was: files on disk and the host's state, down to a generation's pixels."""
    st, r = host.post("/sdapi/v1/txt2img", PROBE)
    assert st == 200, (st, r)
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(r["images"][0]))).convert("RGB"))
    state = {"files": disk(host), "pixels": hashlib.sha256(pixels.tobytes()).hexdigest(),
             "infotext": json.loads(r["info"])["infotexts"][0]}
    for path in ("/sdapi/v1/options", "/sdapi/v1/embeddings", "/sdapi/v1/loras", "/storyboard/v1/models",
                 "/storyboard/v1/detailer/models", "/storyboard/v1/detailer/schema"):
        st, state[path] = host.get(path)
        assert st == 200, (path, st, state[path])
    return state


def assert_same(before: dict, after: dict) -> None:
    fb, fa = before["files"], after["files"]
    leftovers = sorted(p for p in fa if p.endswith(".tmp"))
    assert not leftovers, f"temporary files left behind: {leftovers}"
    assert fa == fb, ("files changed: " + json.dumps({"new": sorted(set(fa) - set(fb)),
                                                      "gone": sorted(set(fb) - set(fa)),
                                                      "changed": sorted(p for p in fa if p in fb and fa[p] != fb[p])},
                                                     indent=1))
    for key in before:
        if key != "files":
            assert after[key] == before[key], f"{key} changed"


@pytest.fixture
def unchanged(host):
    before = observe(host)
    yield
    assert_same(before, observe(host))


def one_sentence(text, host, *mentions: str) -> str:
    """The answer is one sentence that says what is wrong, without traceback or server path."""
    assert isinstance(text, str) and text, text
    assert text == text.strip() and "\n" not in text and text.endswith("."), f"not one sentence: {text!r}"
    assert not re.search(r"[.!?]\s+[A-Z]", text), f"more than one sentence: {text!r}"
    assert "Traceback" not in text and "Errno" not in text, text
    for marker in (host.root, os.path.realpath(host.root), os.sep + "tmp", os.path.expanduser("~") + os.sep):
        assert marker not in text, f"the answer shows a server path: {text!r}"
    for m in mentions:
        assert m.lower() in text.lower(), f"{m!r} is not named in {text!r}"
    return text


def refused(answer, host, status: int, field, *mentions: str) -> str:
    """A 4xx answer with one sentence in "error", the same in "detail"; `field`: the name its loc must end with
    (or a tuple of the acceptable names, for a check across two fields), None for the body as a whole."""
    st, body = answer
    assert st == status, (st, body)
    assert isinstance(body, dict), body
    text = one_sentence(body["error"], host, *mentions)
    assert len(body["detail"]) == 1 and body["detail"][0]["msg"] == text, body["detail"]
    if field is not None:
        assert body["detail"][0]["loc"][-1] in ((field,) if isinstance(field, str) else field), body["detail"]
    return text


def failed_job(host, body: dict, *mentions: str) -> dict:
    st, r = host.post("/storyboard/v1/train", body)
    assert st == 200, (st, r)
    job = host.wait_job(r["job_id"], timeout=300)
    assert job["state"] == "failed", job
    assert len(job["errors"]) == 1 and job["message"] == job["errors"][0], job
    one_sentence(job["errors"][0], host, *mentions)
    assert job["files"] == [] and "traceback" not in job["report"], job
    assert host.root not in json.dumps(job), "the job shows a server path"
    return job


def train_body(**kw):
    return lambda d: {**TRAIN, "name": "refused", "data_dir": d["good"], **kw}


# -- refused at request time ------------------------------------------------------------------------------------
REFUSALS = [
    ("name with ../", train_body(name="../escape"), "name", ["model name"]),
    ("name with a slash", train_body(name="a/b"), "name", ["model name"]),
    ("empty name", train_body(name=""), "name", ["model name"]),
    ("name over 64 characters", train_body(name="n" * 65), "name", ["model name", "64"]),
    ("missing folder", lambda d: {**TRAIN, "name": "refused", "data_dir": d["nowhere"]}, "data_dir",
     ["dataset folder", "nowhere", "does not exist"]),
    ("a file instead of a folder", lambda d: {**TRAIN, "name": "refused", "data_dir": d["a_file"]}, "data_dir",
     ["is not a folder"]),
    ("folder not given as text", train_body(data_dir=42), "data_dir", ["dataset folder", "42"]),
    ("empty folder", lambda d: {**TRAIN, "name": "refused", "data_dir": d["empty"]}, "data_dir",
     ["holds no images"]),
    ("only unlabelled images", lambda d: {**TRAIN, "name": "refused", "data_dir": d["unlabelled"]}, "data_dir",
     ["3 without a shot"]),
    ("only conflicting shot tags", lambda d: {**TRAIN, "name": "refused", "data_dir": d["conflict"]}, "data_dir",
     ["conflicting shot tags"]),
    ("unknown preset", train_body(preset="ultra"), "preset", ["preset", "ultra"]),
    ("negative steps", train_body(max_steps=-5), "max_steps", ["max_steps"]),
    ("non-numeric steps", train_body(max_steps="many"), "max_steps", ["max_steps", "many"]),
    ("resolution not a multiple of 64", train_body(resolution=72), ("resolution", "bucket_step"),
     ["resolution", "72", "64"]),
    ("absurd resolution", train_body(resolution=100000), "resolution", ["resolution", "2048"]),
    ("min_timestep above max_timestep", train_body(min_timestep=800, max_timestep=100),
     ("min_timestep", "max_timestep"), ["min_timestep", "max_timestep"]),
    ("absurd learning rate", train_body(unet_lr=1e30), "unet_lr", ["unet_lr", "between 0 and 1"]),
    ("NaN learning rate", train_body(ti_lr=float("nan")), "ti_lr", ["ti_lr", "finite"]),
    ("unknown option", train_body(maxsteps=5), "maxsteps", ["maxsteps"]),
    ("resume with no saved state", train_body(name="never-trained", resume=True), "resume",
     ["no saved training state"]),
]


@pytest.mark.parametrize("build, field, mentions", [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS])
def test_train_request_refused_with_one_sentence(host, unchanged, build, field, mentions):
    jobs = host.get("/storyboard/v1/jobs")[1]["jobs"]
    refused(host.post("/storyboard/v1/train", build(host.data)), host, 422, field, *mentions)
    assert host.get("/storyboard/v1/jobs")[1]["jobs"] == jobs, "a refused request queued a job"


BODIES = [
    ("not JSON", b"{name: 'x', data_dir: }", ["not valid JSON"]),
    ("bytes that are not text", b"\xff\xfe\x00{", ["not valid JSON"]),
    ("a JSON list", b'[{"name": "x"}]', ["JSON object"]),
    ("JSON nested too deeply", b"[" * 100_000 + b"]" * 100_000, ["nested too deeply"]),
]


@pytest.mark.parametrize("raw, mentions", [c[1:] for c in BODIES], ids=[c[0] for c in BODIES])
def test_train_body_that_is_not_an_object_of_options(host, unchanged, raw, mentions):
    refused(host.post("/storyboard/v1/train", raw), host, 422, None, "request body", *mentions)


@pytest.mark.parametrize("method, path", [("GET", "/storyboard/v1/jobs/sb-0-none"),
                                          ("POST", "/storyboard/v1/jobs/sb-0-none/cancel")],
                         ids=["status of an unknown job", "cancel of an unknown job"])
def test_unknown_job_id(host, unchanged, method, path):
    refused(host.call(method, path, {} if method == "POST" else None), host, 404, "job_id", "sb-0-none")


BOARD = {"scenes": "cu | a face |", "width": 64, "height": 64, "steps": 2, "sampler_name": "Euler"}
BOARD_REFUSALS = [
    ("no scene list", {**BOARD, "scenes": "  "}, "scenes", ["scene list is empty"]),
    ("unknown shot", {**BOARD, "scenes": "cu | a face |\nzz | a hand |"}, "scenes", ["Line 2", "unknown shot", "zz"]),
    ("too many columns", {**BOARD, "scenes": "cu | a | b | 1 | two | c"}, "scenes", ["Line 1", "6 columns"]),
    ("neither seed nor pose", {**BOARD, "scenes": "cu | a | b | jumping"}, "scenes", ["Line 1", "jumping", "pose"]),
    ("empty description", {**BOARD, "scenes": "ms |  | hello"}, "scenes", ["Line 1", "description is empty"]),
    ("seed out of range", {**BOARD, "scenes": "cu | a face | | 99999999999"}, "scenes", ["Line 1", "seed"]),
    ("CSV without a dialogue column", {**BOARD, "scenes": "shot,description\ncu,a face\n"}, "scenes",
     ["header row", "dialogue"]),
    ("JSON scene that is not an object", {**BOARD, "scenes": '["cu, a face"]'}, "scenes",
     ["Scene 1", "must be an object"]),
    ("unknown scene list format", {**BOARD, "format": "xml"}, "format", ["format", "xml"]),
    ("steps 0", {**BOARD, "steps": 0}, "steps", ["steps"]),
    ("width not a multiple of 8", {**BOARD, "width": 100}, "width", ["width", "multiple of 8"]),
    ("unknown board field", {**BOARD, "colour": "red"}, "colour", ["colour", "not a board field"]),
    ("unknown sampler", {**BOARD, "sampler_name": "Nope"}, "sampler_name", ["Nope", "not a sampler"]),
    ("unknown storyboard model", {**BOARD, "storyboard_model": "ghost"}, "storyboard_model", ["ghost", "not found"]),
    ("unknown always-on script", {**BOARD, "alwayson_scripts": {"no such script": {"args": []}}},
     "alwayson_scripts", ["no such script"]),
    ("bad detailer args", {**BOARD, "alwayson_scripts": {"storyboard detailer": {"args": [True, {**PASS,
                                                                                            "denoise": 3}]}}},
     "alwayson_scripts", ["pass 1", "denoise"]),
    ("missing font file", {**BOARD, "font_path": "/no/such/font.ttf"}, "font_path", ["font file", "does not exist"]),
    ("a JSON list body", [BOARD], None, ["request body", "JSON object"]),
    ("composition without sd-webui-controlnet", {**BOARD, "composition": "standing"}, "composition",
     ["install sd-webui-controlnet", "openpose"]),
    ("a scene's pose without sd-webui-controlnet", {**BOARD, "scenes": "cu | a face |\nms | a hand | | sitting"},
     "scenes", ["Composition sends a pose to ControlNet", "install sd-webui-controlnet", "openpose"]),
]


@pytest.mark.parametrize("body, field, mentions", [c[1:] for c in BOARD_REFUSALS], ids=[c[0] for c in BOARD_REFUSALS])
def test_board_request_refused_with_one_sentence(host, unchanged, body, field, mentions):
    refused(host.post("/storyboard/v1/board", body), host, 422, field, *mentions)
    assert [j for j in host.get("/storyboard/v1/jobs")[1]["jobs"] if j["kind"] == "board"] == []


@pytest.mark.parametrize("method, path, body, status, field, mentions", [
    ("POST", "/storyboard/v1/board", b"{scenes: }", 422, None, ["not valid JSON"]),
    ("POST", "/storyboard/v1/boards/no-such-board/panels/1/redraw", {}, 404, "board", ["no board named"]),
    ("POST", "/storyboard/v1/boards/..%5Cmodels/panels/1/redraw", {}, 404, "board", ["not a board name"]),
    ("GET", "/storyboard/v1/boards/no-such-board", None, 404, "board", ["no board named"]),
    ("GET", "/storyboard/v1/boards/no-such-board/files/board.png", None, 404, "board", ["no board named"]),
], ids=["board body not JSON", "redraw of an unknown board", "redraw of a path outside the boards", "an unknown board",
        "a file of an unknown board"])
def test_board_routes_refuse_bad_names(host, unchanged, method, path, body, status, field, mentions):
    refused(host.call(method, path, body), host, status, field, *mentions)


DETAILER = [
    ("denoise out of range", "txt2img", [True, {**PASS, "denoise": 3}], ["pass 1", "denoise"]),
    ("unknown detector", "txt2img", [True, {**PASS, "detector": "nope.pt"}], ["detector", "nope.pt"]),
    ("unknown pass field", "txt2img", [True, {**PASS, "denoize": 0.5}], ["denoize"]),
    ("args not a list", "txt2img", {"enabled": True}, ['"args" must be a list']),
    ("a pass that is not an object", "txt2img", [True, "face"], ["pass 1", "settings object"]),
    ("more passes than the host allows", "txt2img", [True, PASS, PASS, PASS], ["3 passes", "at most 2"]),
    ("detail-only on txt2img", "txt2img", [True, PASS, True], ["detail-only", "img2img"]),
    ("inpaint width not a multiple of 8", "img2img", [True, {**PASS, "inpaint_width": 100}],
     ["inpaint_width", "multiple of 8"]),
]


@pytest.mark.parametrize("route, args, mentions", [c[1:] for c in DETAILER], ids=[c[0] for c in DETAILER])
def test_bad_detailer_args(host, unchanged, route, args, mentions):
    body = {**PROBE, "alwayson_scripts": {"storyboard detailer": {"args": args}}}
    if route == "img2img":
        buf = io.BytesIO()
        Image.new("RGB", (64, 64), "white").save(buf, format="PNG")
        body.update(init_images=[base64.b64encode(buf.getvalue()).decode()], denoising_strength=0.5)
    st, r = host.post(f"/sdapi/v1/{route}", body)
    assert st == 422, (st, r)
    one_sentence(r["detail"], host, "Storyboard detailer", *mentions)


COMPOSITION = [
    ("a pose without sd-webui-controlnet", ["sitting"], ["install sd-webui-controlnet"]),
    ("an unknown pose", ["dancing"], ["composition must be one of", "'dancing'"]),
    ("a weight out of range", ["none", 3], ["composition_weight", "from 0 to 2"]),
    ("reference without an image", ["reference"], ["'reference' needs a pose image"]),
    ("a pose image that is not an image", ["reference", 1.0, None, "bm90IGFuIGltYWdl"], ["not a base64-encoded PNG"]),
]


@pytest.mark.parametrize("args, mentions", [c[1:] for c in COMPOSITION], ids=[c[0] for c in COMPOSITION])
def test_bad_composition_args(host, unchanged, args, mentions):
    """txt2img's Storyboard triggers arguments after the model: composition, weight, ControlNet model, pose image.
    This host has no sd-webui-controlnet, so any real pose is refused."""
    body = {**PROBE, "alwayson_scripts": {"Storyboard triggers": {"args": [None, *args]}}}
    st, r = host.post("/sdapi/v1/txt2img", body)
    assert st == 422, (st, r)
    one_sentence(r["detail"], host, *mentions)


def _photo64() -> str:
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((128, 128)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


POSE_REFUSALS = [
    ("an unknown pose", {"pose": "dancing"}, "pose", ["'dancing'", "standing, sitting, walking, two"]),
    ("an unknown shot", {"shot": "xl"}, "shot", ["'xl'", "cu, ms, fs"]),
    ("a size out of range", {"width": 5000}, "width", ["from 8 to 2048"]),
    ("an unknown field", {"pose": "two", "colour": "red"}, "colour", ["not a pose field"]),
    ("an image that is not base64", {"image": "not an image"}, "image", ["base64-encoded PNG or JPEG"]),
    ("a photo with no detector weights offline", {"image": _photo64}, "image",
     ["OpenPose weights", "downloads are off"]),
    ("a JSON list body", [], None, ["JSON object"]),
]


@pytest.mark.parametrize("body, field, mentions", [c[1:] for c in POSE_REFUSALS], ids=[c[0] for c in POSE_REFUSALS])
def test_pose_request_refused_with_one_sentence(host, unchanged, body, field, mentions):
    if isinstance(body, dict):
        body = {k: v() if callable(v) else v for k, v in body.items()}
    refused(host.post("/storyboard/v1/pose", body), host, 422, field, *mentions)


# -- refused by the job: it fails with one sentence and writes nothing ------------------------------------------
@pytest.mark.parametrize("folder, mentions, reason", [
    ("corrupt", [": 4 truncated or corrupt image data."], "truncated or corrupt image data"),
    ("tiny", [": 3 too small (16×16 pixels; the shorter side must be at least 32)."],
     "too small (16×16 pixels; the shorter side must be at least 32)"),
], ids=["only corrupt or truncated images", "only tiny images"])
def test_dataset_with_nothing_usable_fails_the_job(host, unchanged, folder, mentions, reason):
    job = failed_job(host, {**TRAIN, "name": "unusable", "data_dir": host.data[folder]},
                     f"None of the {4 if folder == 'corrupt' else 3} images in {folder} can be used", *mentions)
    skipped = job["report"]["skipped"]
    assert skipped and all(s["reason"].startswith(reason.split(" (")[0]) for s in skipped), skipped
    assert reason in {s["reason"] for s in skipped}, skipped
    assert all("rel_path" in s and "path" not in s for s in skipped), skipped


def test_nan_loss_fails_the_job(host, unchanged):
    job = failed_job(host, {**TRAIN, "name": "nan", "data_dir": host.data["good"], "noise_offset": 1e30},
                     "loss became nan")
    assert job["step"] == 0, job


# -- 16-bit and CMYK images train; then what needs a trained model -----------------------------------------------
def test_16bit_png_and_cmyk_jpeg_train_and_the_report_says_so(host):
    before = disk(host)
    st, r = host.post("/storyboard/v1/train", {**TRAIN, "name": "deep", "data_dir": host.data["deep"]})
    assert st == 200, r
    job = host.wait_job(r["job_id"])
    assert job["state"] == "finished" and job["step"] == TRAIN["max_steps"], job
    report = job["report"]
    assert report["used"] == 12 and report["skipped"] == [] and report["unlabelled"] == [], report
    assert {it["mode"] for it in report["items"]} == {"I", "RGB", "CMYK"}, report["items"]
    assert "Converted to RGB on loading: CMYK 4, I 4 (transparency is composited on white)." in report["report"]
    expected = {f"models/Lora/deep.{x}" for x in ("safetensors", "json")} | \
        {f"embeddings/deep-{s}_trg.safetensors" for s in ("cu", "ms", "fs")} | \
        {f"models/storyboard/state/deep/state.{x}" for x in ("safetensors", "json")}
    assert set(job["files"]) == expected, job["files"]
    after = disk(host)
    new_files = {os.path.relpath(p, host.dir) for p in set(after) - set(before) if after[p][0] is not None}
    assert new_files == expected and not any(p.endswith(".tmp") for p in after), new_files
    changed = [p for p in before if before[p][0] is not None and after.get(p) != before[p]]
    assert not changed, f"training changed files it does not own: {changed}"


def test_resume_with_other_settings_is_refused(host, unchanged):
    refused(host.post("/storyboard/v1/train", {**TRAIN, "name": "deep", "data_dir": host.data["deep"], "rank": 8,
                                               "resume": True}), host, 422, "resume", "other settings", "rank")


def test_resume_on_another_dataset_fails_the_job(host, unchanged):
    failed_job(host, {**TRAIN, "name": "deep", "data_dir": host.data["good"], "resume": True, "max_steps": 6},
               "dataset changed")


def test_a_name_that_would_overwrite_a_lora_not_trained_here_is_refused(host):
    foreign = os.path.join(host.dir, "models", "Lora", "mystyle.safetensors")
    save_file({"lora_unet_x.lora_down.weight": torch.zeros(4, 8)}, foreign, metadata={"ss_network_dim": "4"})
    before = observe(host)
    refused(host.post("/storyboard/v1/train", {**TRAIN, "name": "mystyle", "data_dir": host.data["good"]}), host,
            422, "name", "mystyle", "not a storyboard model")
    assert_same(before, observe(host))


def test_a_second_training_while_one_runs_is_refused(host):
    st, r = host.post("/storyboard/v1/train", {**TRAIN, "name": "busy", "data_dir": host.data["good"],
                                               "max_steps": 100_000})
    assert st == 200, r
    host.wait_job(r["job_id"], until=("running",))
    before = disk(host)
    text = refused(host.post("/storyboard/v1/train", {**TRAIN, "name": "second", "data_dir": host.data["good"]}),
                   host, 409, None, r["job_id"], "running")
    assert disk(host) == before and host.get(f"/storyboard/v1/jobs/{r['job_id']}")[1]["state"] == "running", text
    host.post(f"/storyboard/v1/jobs/{r['job_id']}/cancel")
    job = host.wait_job(r["job_id"])
    assert job["state"] == "interrupted", job
    after = disk(host)
    new = sorted(os.path.relpath(p, host.dir) for p in set(after) - set(before) if after[p][0] is not None)
    assert all("busy" in p for p in new), new


# -- a full disk ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def disk_full_host(host):
    """The same WebUI restarted with files limited to DISK_LIMIT bytes: a write past it fails with EFBIG."""
    lora = os.path.getsize(os.path.join(host.dir, "models", "Lora", "deep.safetensors"))
    state = os.path.getsize(os.path.join(host.dir, "models", "storyboard", "state", "deep", "state.safetensors"))
    assert lora < DISK_LIMIT < state, "the limit must let the LoRA through and stop the training state"
    host.stop()
    host.start("--api", preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (DISK_LIMIT, DISK_LIMIT)))
    return host


@pytest.mark.parametrize("name, data", [("full", "good"), ("deep", "deep")],
                         ids=["disk full on a new model", "disk full on replacing a model"])
def test_disk_full_leaves_no_file_and_no_half_replaced_set(disk_full_host, name, data):
    host = disk_full_host
    before = observe(host)
    failed_job(host, {**TRAIN, "name": name, "data_dir": host.data[data]}, "could not be saved", "File too large",
               "no file was written or changed")
    assert_same(before, observe(host))
