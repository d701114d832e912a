"""Board composition through sd-webui-controlnet in the real host: A1111 v1.10.1 on CPU with a full-size SD1.5
checkpoint and an SD1.5 openpose-shaped ControlNet, both with random weights (tests/sd15_random.py), the ControlNet
extension copied into extensions/ and this extension installed from a git clone.

sd-webui-controlnet builds every non-SDXL ControlNet at SD1.5 widths, so the toy base cannot be used here. Cost on
2 CPU cores: ~30 s to make the models (5.3 GB peak in a child process), the host ~7.5 GB resident, ~20 s a 64-px
panel at 4 steps. The module skips with one line when less than NEED_GB of memory is free, when the temporary disk
has less than NEED_DISK_GB, or when no sd-webui-controlnet source is found: `$SD_WEBUI_CONTROLNET_DIR` (a checkout,
or a git directory whose HEAD is used), else `../shared/sd-webui-controlnet` beside the checkout, else a clone of
PINNED from GitHub.
"""
from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from a1111_host import REPO, webui_or_skip

NEED_GB = 10          # the host's ~7.5 GB with headroom
NEED_DISK_GB = 4      # the checkpoint (2.1 GB), the ControlNet (0.7 GB), the host copy
URL = "https://github.com/Mikubill/sd-webui-controlnet.git"
PINNED = "56cec5b2"   # v1.1.455, the version the bridge was checked against
CN_FILE = "control_sd15_openpose_random.safetensors"
BOARD = {"scenes": "fs | a girl stands in the rain |\n- | the empty street |", "width": 64, "height": 64,
         "steps": 4, "cfg": 5.0, "sampler_name": "Euler", "seed": 11, "title": "cn"}


def _free_gb() -> float:
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30


def _controlnet_source(cache: str) -> tuple[str | None, str]:
    """(a folder or git directory holding sd-webui-controlnet, its kind) or (None, why not, in one line)."""
    env = os.environ.get("SD_WEBUI_CONTROLNET_DIR")
    candidates = ([env] if env else []) + [os.path.join(os.path.dirname(REPO), "shared", "sd-webui-controlnet"),
                                           os.path.join(cache, "sd-webui-controlnet")]
    for path in candidates:
        if os.path.isfile(os.path.join(path, "scripts", "controlnet.py")):
            return path, "tree"
        if os.path.isfile(os.path.join(path, "HEAD")) and os.path.isdir(os.path.join(path, "objects")):
            return path, "git"
    if env:
        return None, f"SD_WEBUI_CONTROLNET_DIR={env} holds no sd-webui-controlnet"
    dest = os.path.join(cache, "sd-webui-controlnet")
    try:
        subprocess.run(["git", "clone", "-q", URL, dest + ".part"], check=True, capture_output=True, timeout=600)
        subprocess.run(["git", "-C", dest + ".part", "checkout", "-q", PINNED], check=True, capture_output=True)
        os.replace(dest + ".part", dest)
        return dest, "tree"
    except (OSError, subprocess.SubprocessError) as e:
        shutil.rmtree(dest + ".part", ignore_errors=True)
        return None, f"no sd-webui-controlnet source: SD_WEBUI_CONTROLNET_DIR unset and cloning failed " \
                     f"({type(e).__name__})"


def _copy_extension(src: str, kind: str, dest: str) -> None:
    if kind == "tree":
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".git", "__pycache__"))
        return
    os.makedirs(dest)
    archive = subprocess.run(["git", "--git-dir", src, "archive", "HEAD"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    if _free_gb() < NEED_GB:
        pytest.skip(f"needs {NEED_GB} GB of free memory for a full-size SD1.5 host; {_free_gb():.1f} GB free")
    src, kind = _controlnet_source(os.path.join(os.path.expanduser("~"), ".cache", "storyboard-tests"))
    if src is None:
        pytest.skip(kind)
    webui = webui_or_skip(tmp_path_factory, "a1111-cn")
    if shutil.disk_usage(webui.root).free < NEED_DISK_GB * 2**30:
        pytest.skip(f"needs {NEED_DISK_GB} GB of free disk for the SD1.5 models")
    install = webui.prepare()
    assert install["returncode"] == 0, install["output"]
    _copy_extension(src, kind, os.path.join(webui.dir, "extensions", "sd-webui-controlnet"))
    # The models in a child process, so that this one does not keep their 5 GB peak.
    models = os.path.join(webui.root, "made")
    os.makedirs(models)
    subprocess.run([sys.executable, os.path.join(REPO, "tests", "sd15_random.py"), models], check=True,
                   capture_output=True, env=webui.env, timeout=900)
    os.replace(os.path.join(models, "sd15-random.safetensors"),
               os.path.join(webui.dir, "models", "Stable-diffusion", "sd15-random.safetensors"))
    os.makedirs(os.path.join(webui.dir, "models", "ControlNet"), exist_ok=True)
    os.replace(os.path.join(models, CN_FILE), os.path.join(webui.dir, "models", "ControlNet", CN_FILE))
    config = os.path.join(webui.dir, "config.json")
    with open(config, encoding="utf-8") as f:
        cfg = json.load(f)
    cfg["sd_model_checkpoint"] = "sd15-random.safetensors"
    with open(config, "w", encoding="utf-8") as f:
        json.dump(cfg, f)
    webui.start("--api", timeout=600)
    yield webui
    webui.stop()


def draw(host, **extra) -> tuple[str, dict]:
    st, r = host.post("/storyboard/v1/board", {**BOARD, **extra})
    assert st == 200, (st, r)
    job = host.wait_job(r["job_id"], timeout=900)
    assert job["state"] == "finished", job
    return job["report"]["board"], job


def panel(host, board: str, n: int) -> Image.Image:
    st, data = host.get(f"/storyboard/v1/boards/{board}/files/panel-{n:03d}.png", raw=True)
    assert st == 200, st
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def test_the_extension_and_its_model_are_offered(host):
    assert "Traceback" not in host.log(), host.log_tail()
    st, models = host.get("/controlnet/model_list")
    assert st == 200 and any(m.startswith("control_sd15_openpose_random") for m in models["model_list"]), models
    st, schema = host.get("/storyboard/v1/board/schema")
    assert st == 200 and "composition" in schema["properties"] and "controlnet_model" in schema["host_fields"]


def test_a_composed_panel_differs_and_its_infotext_names_the_unit(host):
    plain, _ = draw(host)
    posed, job = draw(host, composition="standing", composition_weight=1.5)
    a, b = panel(host, plain, 1), panel(host, posed, 1)
    assert not np.array_equal(np.asarray(a), np.asarray(b)), "the pose did not change the panel"
    text = b.info["parameters"]
    assert 'ControlNet 0: "Module: none, Model: control_sd15_openpose_random' in text, text
    assert "Weight: 1.5" in text, text
    assert "ControlNet" not in a.info["parameters"], a.info["parameters"]
    # the insert (no shot) gets no pose: no unit, the same picture as without a composition
    insert = panel(host, posed, 2)
    assert "ControlNet" not in insert.info["parameters"], insert.info["parameters"]
    assert np.array_equal(np.asarray(insert), np.asarray(panel(host, plain, 2)))
    st, board = host.get(f"/storyboard/v1/boards/{posed}")
    assert st == 200 and board["model"]["host"]["controlnet_model"].startswith("control_sd15_openpose_random")


def test_another_pose_changes_the_panel_again_and_redraw_keeps_it(host):
    standing, _ = draw(host, composition="standing")
    two, _ = draw(host, composition="two", controlnet_model="control_sd15_openpose_random")
    a, b = panel(host, standing, 1), panel(host, two, 1)
    assert not np.array_equal(np.asarray(a), np.asarray(b))
    seed = int(a.info["parameters"].split("Seed: ")[1].split(",")[0])
    st, r = host.post(f"/storyboard/v1/boards/{standing}/panels/1/redraw", {"seed": seed})
    assert st == 200, (st, r)
    assert host.wait_job(r["job_id"], timeout=600)["state"] == "finished"
    again = panel(host, standing, 1)
    assert "ControlNet 0:" in again.info["parameters"]
    assert np.array_equal(np.asarray(a), np.asarray(again))


def test_a_scenes_own_pose_on_a_board_without_a_composition(host):
    plain, _ = draw(host, scenes="fs | a girl stands in the rain |")
    posed, _ = draw(host, scenes="fs | a girl stands in the rain | | sitting")
    a, b = panel(host, plain, 1), panel(host, posed, 1)
    assert not np.array_equal(np.asarray(a), np.asarray(b)), "the scene's pose did not change the panel"
    assert 'ControlNet 0: "Module: none, Model: control_sd15_openpose_random' in b.info["parameters"], b.info
    assert "ControlNet" not in a.info["parameters"], a.info["parameters"]
    st, board = host.get(f"/storyboard/v1/boards/{posed}")
    assert st == 200 and board["options"]["composition"] == "none" and board["panels"][0]["pose"] == "sitting"
    assert board["model"]["host"]["controlnet_model"].startswith("control_sd15_openpose_random")


def test_an_unknown_controlnet_model_is_refused_in_one_sentence(host):
    st, body = host.post("/storyboard/v1/board", {**BOARD, "composition": "walking", "controlnet_model": "ghost"})
    assert st == 422, (st, body)
    text = body["error"]
    assert "ghost" in text and "control_sd15_openpose_random" in text and text.endswith("."), text
    assert [d["loc"][-1] for d in body["detail"]] == ["controlnet_model"], body


# -- txt2img: the Storyboard triggers accordion's composition --------------------------------------------------------
TXT2IMG = {"prompt": "<fs_trg> a girl stands in the rain", "steps": 4, "cfg_scale": 5.0, "width": 64, "height": 64,
           "seed": 11, "sampler_name": "Euler"}


def txt2img(host, *composition, **extra) -> tuple[Image.Image, str]:
    """One txt2img image and its infotext; `composition`: the triggers script's arguments after its model."""
    body = {**TXT2IMG, **extra}
    if composition:
        body["alwayson_scripts"] = {"Storyboard triggers": {"args": [None, *composition]}}
    st, r = host.post("/sdapi/v1/txt2img", body)
    assert st == 200, (st, r)
    return Image.open(io.BytesIO(base64.b64decode(r["images"][0]))).convert("RGB"), json.loads(r["info"])["infotexts"][0]


def _png64(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_txt2img_composition_is_framed_as_the_prompts_shot(host):
    plain, plain_text = txt2img(host)
    posed, text = txt2img(host, "sitting", 1.25)
    assert not np.array_equal(np.asarray(plain), np.asarray(posed)), "the pose did not change the image"
    assert "Storyboard composition: sitting" in text and "Storyboard composition weight: 1.25" in text, text
    assert 'ControlNet 0: "Module: none, Model: control_sd15_openpose_random' in text, text
    assert "ControlNet" not in plain_text and "Storyboard composition" not in plain_text, plain_text
    # the same pose under another shot's trigger is framed otherwise: another picture
    close, _ = txt2img(host, "sitting", 1.25, prompt="<cu_trg> a girl stands in the rain")
    close_plain, _ = txt2img(host, prompt="<cu_trg> a girl stands in the rain")
    assert not np.array_equal(np.asarray(close), np.asarray(close_plain))
    # no trigger, no framing: the image is drawn as without a composition
    bare, bare_text = txt2img(host, "sitting", prompt="a girl stands in the rain")
    bare_plain, _ = txt2img(host, prompt="a girl stands in the rain")
    assert np.array_equal(np.asarray(bare), np.asarray(bare_plain)) and "ControlNet" not in bare_text, bare_text


def test_txt2img_reference_pose_and_the_users_own_unit(host):
    from lib_storyboard.composition import pose_image

    ref = _png64(pose_image("two", "fs", 64, 64))
    plain, _ = txt2img(host)
    posed, text = txt2img(host, "reference", 1.0, "control_sd15_openpose_random", ref)
    assert not np.array_equal(np.asarray(plain), np.asarray(posed))
    assert "Storyboard composition: reference" in text and "ControlNet 0:" in text, text
    # A unit the user enabled keeps the first slot; the composition takes the next free one.
    own = {"enabled": True, "module": "none", "model": "control_sd15_openpose_random", "weight": 0.5, "image": ref}
    body = {**TXT2IMG, "alwayson_scripts": {"Storyboard triggers": {"args": [None, "standing"]},
                                            "ControlNet": {"args": [own]}}}
    st, r = host.post("/sdapi/v1/txt2img", body)
    assert st == 200, (st, r)
    text = json.loads(r["info"])["infotexts"][0]
    assert "Weight: 0.5" in text.split("ControlNet 0:")[1].split("ControlNet 1:")[0], text
    assert "ControlNet 1:" in text and "Storyboard composition: standing" in text, text


def test_txt2img_composition_with_an_unknown_model_is_refused(host):
    body = {**TXT2IMG, "alwayson_scripts": {"Storyboard triggers": {"args": [None, "walking", 1.0, "ghost"]}}}
    st, r = host.post("/sdapi/v1/txt2img", body)
    assert st == 422, (st, r)
    assert "'ghost' is not a ControlNet model" in r["detail"] and "control_sd15_openpose_random" in r["detail"], r


def test_compose_sends_a_pose_to_txt2img_which_draws_with_it(host, tmp_path):
    """As a user: Storyboard → Compose → pose "two" → Send to txt2img; txt2img's accordion now holds the pose, and
    Generate with a full-shot trigger draws through ControlNet (the infotext under the image says so)."""
    from browser_driver import TOP_TABS, Browser, browser_missing

    missing = browser_missing()
    if missing:
        pytest.skip(f"the browser step needs {missing}; .ci/run installs them")
    browser = Browser(str(tmp_path))
    try:
        tab, chosen, shown = browser.run(
            {"do": "goto", "url": host.url, "ready": TOP_TABS},
            {"do": "click", "sel": TOP_TABS, "hasText": "Storyboard"},
            {"do": "click", "sel": "#storyboard_sections > .tab-nav button", "hasText": "Compose"},
            {"do": "click", "sel": "#storyboard_compose_pose input"},
            {"do": "click", "sel": "#storyboard_compose_pose li", "hasText": "two"},
            {"do": "click", "sel": "#storyboard_compose_make"},
            {"do": "wait", "sel": "#storyboard_compose_status .prose", "match": "framed"},
            {"do": "click", "sel": "#storyboard_compose_send"},
            {"do": "visible", "sel": "#txt2img_prompt"},
            {"do": "wait", "sel": "#script_txt2img_storyboard_triggers_composition input", "value": True,
             "match": "^two$"},
            {"do": "visible", "sel": "#script_txt2img_storyboard_triggers_composition"})[-3:]
        assert tab and chosen == "two" and shown, (tab, chosen, shown)   # the accordion opened to show it
        info = browser.run(
            {"do": "fill", "sel": "#txt2img_prompt textarea", "value": "<fs_trg> two friends in the rain"},
            {"do": "number", "sel": "#txt2img_steps", "value": 4},
            {"do": "number", "sel": "#txt2img_width", "value": 64},
            {"do": "number", "sel": "#txt2img_height", "value": 64},
            {"do": "click", "sel": "#txt2img_generate"},
            {"do": "wait", "sel": "#html_info_txt2img", "match": "Storyboard composition", "timeout": 300000,
             "poll": 500},
            {"do": "screenshot", "path": str(tmp_path / "compose-txt2img.png"), "full": True})[-2]
    finally:
        browser.close()
    assert "Storyboard composition: two" in info and "ControlNet 0:" in info, info
    assert "Traceback" not in host.log(), host.log_tail()
