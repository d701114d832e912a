"""The extension as users meet it, in a browser: headless Chromium (driven by tests/browser/ui_steps.cjs through
playwright-core) on the real A1111 v1.10.1. The host starts without the extension, which is installed through
Extensions → Install from URL from a `file://` clone of this checkout; after a restart the Storyboard tab scans a
toy dataset and trains, a bad input answers with one sentence, and txt2img shows the extension's accordions.

The tests share one host and one page and run in file order. Without Chromium, node or playwright-core
(`.ci/run` installs them), or without an A1111 source, the module skips with one line saying why.
"""
from __future__ import annotations

import os
import re
import subprocess

import pytest

from a1111_host import REPO, git_url_of_checkout, pip_freeze, webui_or_skip
from browser_driver import TOP_TABS, Browser, browser_missing

_missing = browser_missing()
if _missing:
    pytest.skip(f"browser tests need {_missing}; .ci/run installs them", allow_module_level=True)

NAME = "sbui"
# A run small enough for two CPU cores: 24 toy sketches at 64 px, one preview at the end.
RUN = {"storyboard_max_steps": 12, "storyboard_resolution": 64, "storyboard_batch_size": 2,
       "storyboard_preview_every": 12, "storyboard_rank": 4}


# Records every Python script the host runs that is an install.py: the host's Install button runs the extension's
# in a child process, which this module (on the host's PYTHONPATH) sees start.
INSTALL_TRACE = '''import os, sys
if sys.argv and os.path.basename(sys.argv[0]) == "install.py":
    with open(os.environ["STORYBOARD_INSTALL_TRACE"], "a", encoding="utf-8") as f:
        f.write(os.path.abspath(sys.argv[0]) + "\\n")
'''


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return str(tmp_path_factory.mktemp("screenshots"))


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    webui = webui_or_skip(tmp_path_factory, "a1111-browser")
    root = webui.root
    assert webui.prepare(extension=False) is None and not os.path.exists(webui.ext)
    trace_dir = os.path.join(root, "trace")
    os.makedirs(trace_dir)
    with open(os.path.join(trace_dir, "sitecustomize.py"), "w", encoding="utf-8") as f:
        f.write(INSTALL_TRACE)
    webui.trace = os.path.join(root, "install-trace.txt")
    webui.env.update({"PYTHONPATH": trace_dir, "STORYBOARD_INSTALL_TRACE": webui.trace})
    webui.remote = git_url_of_checkout(os.path.join(root, "remote"))
    from lib_storyboard.toyworld.sketches import write_dataset
    webui.data = os.path.join(root, "sketches")
    write_dataset(webui.data, n_per_shot=8, size=64, seed=3)
    webui.start("--api")
    yield webui
    webui.stop()


@pytest.fixture(scope="module")
def browser(shots):
    b = Browser(shots)
    yield b
    b.close()


def files_under(root: str, *folders: str) -> set[str]:
    out = set()
    for folder in folders:
        for d, _, names in os.walk(os.path.join(root, folder)):
            out.update(os.path.relpath(os.path.join(d, n), root) for n in names)
    return out


def test_install_from_url_through_the_extensions_tab(host, browser, shots):
    tabs = browser.run({"do": "goto", "url": host.url, "ready": TOP_TABS}, {"do": "texts", "sel": TOP_TABS})[-1]
    assert "Extensions" in tabs and "Storyboard" not in tabs, tabs
    before = pip_freeze(host.python)
    result, shot = browser.run(
        {"do": "click", "sel": TOP_TABS, "hasText": "Extensions"},
        {"do": "click", "sel": "#tabs_extensions > .tab-nav button", "hasText": "Install from URL"},
        {"do": "fill", "label": "URL for extension's git repository", "value": host.remote},
        {"do": "click", "role": "button", "name": "Install", "visible": True},
        # The result line replaces gradio's "processing" text once the clone and install.py are done.
        {"do": "wait", "sel": "#extension_install_result", "match": "Installed into|Error|Exception",
         "timeout": 300000, "poll": 500},
        {"do": "screenshot", "path": os.path.join(shots, "install-from-url.png")})[-2:]
    print("screenshot:", shot)
    assert result.strip() == f"Installed into {host.ext}. Use Installed tab to restart.", result
    ran = []
    if os.path.exists(host.trace):
        with open(host.trace, encoding="utf-8") as f:
            ran = f.read().splitlines()
    assert ran == [os.path.join(host.ext, "install.py")], f"install.py did not run once: {ran}"
    assert pip_freeze(host.python) == before, "installing from the URL changed the host's packages"
    # What was installed is the code under test: the temporary commit of the working tree.
    head = subprocess.run(["git", "-C", host.ext, "log", "-1", "--format=%s"], capture_output=True, text=True)
    assert head.stdout.strip() == "The working tree under test", head
    for rel in ("install.py", "scripts/storyboard.py", "style.css"):
        with open(os.path.join(REPO, rel), "rb") as a, open(os.path.join(host.ext, rel), "rb") as b:
            assert a.read() == b.read(), rel
    assert "Traceback" not in host.log(), host.log_tail()


def test_after_a_restart_the_storyboard_tab_is_there(host, browser):
    host.stop()
    host.start("--api")
    tabs = browser.run({"do": "goto", "url": host.url, "ready": TOP_TABS}, {"do": "texts", "sel": TOP_TABS})[-1]
    assert "Storyboard" in tabs, tabs
    st, exts = host.get("/sdapi/v1/extensions")
    assert st == 200 and any(e["name"] == "sd-webui-storyboard" and e["enabled"] for e in exts), exts
    assert "Traceback" not in host.log(), host.log_tail()


def test_txt2img_shows_the_storyboard_accordions(host, browser):
    labels = browser.run({"do": "click", "sel": TOP_TABS, "hasText": "txt2img"},
                         {"do": "texts", "sel": "#tab_txt2img .gradio-accordion > .label-wrap"})[-1]
    labels = [lab.replace("▼", "").strip() for lab in labels]     # the label, then the open/close arrow
    assert "Storyboard triggers" in labels and "Storyboard detailer" in labels, labels
    opened = browser.run(
        {"do": "click", "sel": "#tab_txt2img .gradio-accordion > .label-wrap", "hasText": "Storyboard triggers"},
        {"do": "visible", "sel": "#script_txt2img_storyboard_triggers_model"},
        {"do": "click", "sel": "#script_txt2img_storyboard_detailer_enabled .label-wrap"},
        {"do": "visible", "sel": "#script_txt2img_storyboard_detailer_p1_detector"})
    assert opened[1] and opened[3], opened


def test_a_missing_folder_answers_one_sentence_and_writes_nothing(host, browser):
    before = files_under(host.dir, "models", "embeddings")
    missing = os.path.join(host.root, "no-such-folder")
    status, errors = browser.run(
        {"do": "click", "sel": TOP_TABS, "hasText": "Storyboard"},
        {"do": "fill", "sel": "#storyboard_data_dir textarea", "value": missing},
        {"do": "fill", "sel": "#storyboard_name textarea", "value": "sbmissing"},
        {"do": "click", "sel": "#storyboard_train"},
        {"do": "wait", "sel": "#storyboard_status .prose", "match": "\\w"},
        {"do": "texts", "sel": "#storyboard_status .storyboard-error"})[-2:]
    # One sentence; under it the host adds its own "Time taken" line, as to every answer of a generation button.
    assert len(errors) == 1 and errors[0] == f"The dataset folder {missing} does not exist.", (errors, status)
    assert "Traceback" not in status and "Error" not in status, status
    assert files_under(host.dir, "models", "embeddings") == before
    assert not os.path.exists(missing)
    assert host.get("/storyboard/v1/jobs")[1]["jobs"] == []


def test_scan_and_train_in_the_tab(host, browser, shots):
    steps = [{"do": "fill", "sel": "#storyboard_data_dir textarea", "value": host.data},
             {"do": "fill", "sel": "#storyboard_name textarea", "value": NAME},
             {"do": "click", "sel": "#storyboard_scan"},
             {"do": "wait", "sel": "#storyboard_report", "match": "images"},
             {"do": "click", "sel": "#tab_storyboard .label-wrap", "hasText": "Settings"}]
    steps += [{"do": "number", "sel": f"#{key}", "value": v} for key, v in RUN.items()]
    report = browser.run(*steps)[3]
    assert report.strip() == "24 images — cu: 8, ms: 8, fs: 8", report
    bar, train, running = browser.run(
        {"do": "click", "sel": "#storyboard_train"},
        {"do": "wait", "sel": "#tab_storyboard .progressDiv", "match": f"Storyboard {NAME}: step"},
        {"do": "box", "sel": "#tab_storyboard .progressDiv"},
        {"do": "box", "sel": "#storyboard_train"},
        {"do": "screenshot", "path": os.path.join(shots, "storyboard-training.png")})[2:]
    # The host's progress bar shows under the Train button (its own style would put it over the tab bar).
    assert bar["y"] > train["y"] + train["height"], (bar, train)
    status, loss, size, shot = browser.run(
        {"do": "wait", "sel": "#storyboard_status .prose", "match": "Finished|Interrupted|\\.$",
         "unless": "no-such-folder", "timeout": 400000, "poll": 500},
        {"do": "text", "sel": "#storyboard_loss"},
        {"do": "image", "sel": "#storyboard_preview"},
        {"do": "screenshot", "path": os.path.join(shots, "storyboard-trained.png"), "full": True})
    print("screenshots:", running, shot)
    assert status.startswith(f"Finished. Step {RUN['storyboard_max_steps']}/{RUN['storyboard_max_steps']}"), status
    assert re.fullmatch(rf"Storyboard {NAME}: step \d+/{RUN['storyboard_max_steps']}, loss \d\.\d+", loss.strip()), loss
    assert size[0] > 64 and size[1] > 0, size
    for rel in (f"models/Lora/{NAME}.safetensors", f"models/Lora/{NAME}.json", f"models/Lora/{NAME}.preview.png",
                f"embeddings/{NAME}-cu_trg.safetensors", f"embeddings/{NAME}-ms_trg.safetensors",
                f"embeddings/{NAME}-fs_trg.safetensors"):
        assert os.path.isfile(os.path.join(host.dir, rel)), rel
        assert rel.endswith(".json") or rel in status, status
    assert os.path.isdir(os.path.join(host.dir, "models", "storyboard", "state", NAME))
    st, jobs = host.get("/storyboard/v1/jobs")
    assert st == 200 and [(j["state"], j["step"]) for j in jobs["jobs"]] == [
        ("finished", RUN["storyboard_max_steps"])], jobs


def test_the_trained_model_has_a_lora_card(browser, shots):
    card = f'#txt2img_lora_cards .card[data-name="{NAME}"]'
    got = browser.run(
        {"do": "click", "sel": TOP_TABS, "hasText": "txt2img"},
        {"do": "click", "sel": "#txt2img_extra_tabs > .tab-nav button", "hasText": "Lora"},
        {"do": "click", "sel": "#txt2img_lora_extra_refresh"},
        {"do": "wait", "sel": "#txt2img_lora_cards", "match": NAME},
        {"do": "texts", "sel": "#txt2img_lora_cards .card .name"},
        {"do": "image", "sel": card},
        {"do": "click", "sel": card},
        {"do": "value", "sel": "#txt2img_prompt textarea"},
        {"do": "screenshot", "path": os.path.join(shots, "lora-card.png")})
    names, size, prompt, shot = got[4], got[5], got[7], got[8]
    print("screenshot:", shot)
    assert names == [NAME], names
    assert size[0] > 0, size
    assert f"<lora:{NAME}:" in prompt, prompt


BOARD_SCENES = ('cu | a girl looks up at the rain | "It\'s here."\nms | she opens her umbrella | "Finally."\n'
                '- | the empty street |\nfs | she runs | "Wait!"\ncu | her smile | "See you."\n'
                'ms | the bus arrives | "Come on."')
BOARD_NUMBERS = {"storyboard_board_steps": 6, "storyboard_board_cfg": 2, "storyboard_board_width": 64,
                 "storyboard_board_height": 64, "storyboard_board_panel_width": 96}


def test_a_board_in_the_tab_redraws_a_panel_and_reloads(host, browser, shots):
    boards = os.path.join(host.dir, "outputs", "storyboard-boards")
    section = "#tab_storyboard .label-wrap"
    steps = [{"do": "click", "sel": TOP_TABS, "hasText": "Storyboard"},
             {"do": "click", "sel": "#storyboard_sections > .tab-nav button", "hasText": "Board"},
             {"do": "fill", "sel": "#storyboard_board_scenes textarea", "value": BOARD_SCENES},
             {"do": "fill", "sel": "#storyboard_board_title textarea", "value": "Rain day"},
             {"do": "click", "sel": "#storyboard_board_seed_policy label", "hasText": "per_panel"},
             {"do": "click", "sel": section, "hasText": "Generation"},
             {"do": "click", "sel": section, "hasText": "Layout"},
             {"do": "click", "sel": "#storyboard_board_detailer input"}]
    steps += [{"do": "number", "sel": f"#{key}", "value": v} for key, v in BOARD_NUMBERS.items()]
    browser.run(*steps)
    progress, status, size, shot = browser.run(
        {"do": "click", "sel": "#storyboard_board_draw"},
        # The host's progress bar, under the Board section's buttons, counting the panels as txt2img batches.
        {"do": "wait", "sel": "#storyboard_board_section .progressDiv", "match": "\\d", "poll": 100},
        {"do": "wait", "sel": "#storyboard_board_status .prose", "match": "Drew|storyboard-error|rror",
         "timeout": 400000, "poll": 500},
        {"do": "image", "sel": "#storyboard_board_image"},
        {"do": "screenshot", "path": os.path.join(shots, "storyboard-board.png"), "full": True})[1:]
    print("screenshot:", shot, "progress:", progress)
    assert status.startswith("Drew 6 panels."), status
    [name] = os.listdir(boards)
    folder = os.path.join(boards, name)
    assert f"outputs/storyboard-boards/{name}/board.pdf" in status, status
    assert size[0] > 3 * 96 and size[1] > 2 * 96, size           # three columns, two rows of 96-px panels
    from PIL import Image
    texts = [Image.open(os.path.join(folder, f"panel-00{i}.png")).text["parameters"] for i in range(1, 7)]
    assert all("Storyboard detailer 1:" in t and "Size: 64x64" in t and f"<lora:{NAME}:1>" in t for t in texts), texts
    assert [re.search(r"Seed: (\d+),", t).group(1) for t in texts] == ["0", "1", "2", "3", "4", "5"], texts

    before = {f: open(os.path.join(folder, f), "rb").read() for f in os.listdir(folder)}
    status = browser.run({"do": "number", "sel": "#storyboard_board_panel", "value": 4},
                         {"do": "number", "sel": "#storyboard_board_new_seed", "value": 77},
                         {"do": "click", "sel": "#storyboard_board_redraw"},
                         {"do": "wait", "sel": "#storyboard_board_status .prose", "match": "Redrew|rror",
                          "timeout": 120000, "poll": 500})[-1]
    assert status.startswith("Redrew panel 4 with seed 77."), status
    after = {f: open(os.path.join(folder, f), "rb").read() for f in os.listdir(folder)}
    assert {f for f in after if after[f] != before[f]} == {"panel-004.png", "board.png", "board.pdf", "board.json"}

    # A scene list file fills the box and names its format.
    csv_file = os.path.join(host.root, "scenes.csv")
    with open(csv_file, "w", encoding="utf-8-sig") as f:
        f.write('shot,description,dialogue\ncu,a face at the window,"Hello, you."\n')
    scenes, fmt = browser.run({"do": "upload", "sel": "#storyboard_board_upload", "path": csv_file},
                              {"do": "wait", "sel": "#storyboard_board_scenes textarea", "value": True,
                               "match": "a face at the window"},
                              {"do": "value", "sel": "#storyboard_board_scenes textarea"},
                              {"do": "value", "sel": "#storyboard_board_format input"})[-2:]
    assert scenes == 'shot,description,dialogue\ncu,a face at the window,"Hello, you."\n' and fmt == "csv", (scenes, fmt)

    scenes, title = browser.run({"do": "fill", "sel": "#storyboard_board_scenes textarea", "value": ""},
                                {"do": "fill", "sel": "#storyboard_board_title textarea", "value": ""},
                                {"do": "click", "sel": "#storyboard_board_load"},
                                {"do": "wait", "sel": "#storyboard_board_status .prose", "match": "Loaded board"},
                                {"do": "value", "sel": "#storyboard_board_scenes textarea"},
                                {"do": "value", "sel": "#storyboard_board_title textarea"})[-2:]
    assert scenes.splitlines()[3] == 'fs | she runs | "Wait!"' and len(scenes.splitlines()) == 6, scenes
    assert title == "Rain day"
    assert "Traceback" not in host.log(), host.log_tail()


def test_a_dataset_from_photos_in_the_tab_then_validation(host, browser, shots):
    from lib_storyboard.framing.evalset import build_samples

    photos, out = os.path.join(host.root, "photos"), os.path.join(host.root, "photo-dataset")
    os.makedirs(photos)
    for s in build_samples():
        if s.shot_key and s.name.startswith(("astronaut", "grace_hopper", "bus")) and s.name.endswith("_a1.0"):
            s.image.save(os.path.join(photos, s.name + ".jpg"), quality=92)
    section = "#storyboard_sections > .tab-nav button"
    status, size, report = browser.run(
        {"do": "click", "sel": TOP_TABS, "hasText": "Storyboard"},
        {"do": "click", "sel": section, "hasText": "Dataset"},
        {"do": "fill", "sel": "#storyboard_dataset_source textarea", "value": photos},
        {"do": "fill", "sel": "#storyboard_dataset_out textarea", "value": out},
        {"do": "click", "sel": "#storyboard_dataset_build"},
        {"do": "wait", "sel": "#storyboard_dataset_status .prose", "match": "\\.", "timeout": 300000, "poll": 500},
        {"do": "image", "sel": "#storyboard_dataset_sheet"},
        {"do": "text", "sel": "#storyboard_dataset_report"})[-3:]
    assert status.startswith("Wrote ") and "report.json" in status, status
    from lib_storyboard.dataset.scan import scan_folder
    scanned = scan_folder(out).as_dict()
    assert all(scanned["counts"].get(k) for k in ("cu", "ms", "fs")), scanned   # the trainer reads it as it is
    assert size[0] > 0, size
    # "Use as training folder" hands the folder to the Train section.
    train_dir = browser.run({"do": "click", "sel": "#storyboard_dataset_use"},
                            {"do": "click", "sel": section, "hasText": "Train"},
                            {"do": "wait", "sel": "#storyboard_data_dir textarea", "value": True, "match": "dataset"},
                            {"do": "click", "sel": section, "hasText": "Dataset"})[2]
    assert train_dir == out, train_dir

    steps = [{"do": "click", "sel": "#tab_storyboard .label-wrap", "hasText": "Validate a trained model"},
             {"do": "click", "sel": "#storyboard_validate_refresh"},
             # Refresh lists the model trained above and, nothing being chosen yet, chooses the newest
             {"do": "wait", "sel": "#storyboard_validate_model input", "value": True, "match": f"^{NAME}$"}]
    steps += [{"do": "number", "sel": f"#storyboard_validate_{key}", "value": v}
              for key, v in (("per_token", 1), ("steps", 4), ("cfg", 2), ("width", 64), ("height", 64))]
    status, matrix, shot = browser.run(
        *steps, {"do": "click", "sel": "#storyboard_validate"},
        {"do": "wait", "sel": "#storyboard_validate_status .prose", "match": "Validated|storyboard-error|rror",
         "timeout": 300000, "poll": 500},
        {"do": "text", "sel": "#storyboard_validate_matrix"},
        {"do": "screenshot", "path": os.path.join(shots, "storyboard-dataset.png"), "full": True})[-3:]
    print("screenshot:", shot)
    assert status.startswith(f"Validated {NAME}:"), status
    assert "Trained tokens" in matrix and "Chance level" in matrix, matrix
    assert "Traceback" not in host.log(), host.log_tail()


def test_a_pose_in_the_compose_section(host, browser, shots):
    """Compose: a drawn pose at a shot's framing appears at the chosen size; this WebUI has no sd-webui-controlnet,
    so the section says what composition needs and offers no Send button."""
    section = "#storyboard_sections > .tab-nav button"
    status, size, note, send, shot = browser.run(
        {"do": "click", "sel": TOP_TABS, "hasText": "Storyboard"},
        {"do": "click", "sel": section, "hasText": "Compose"},
        {"do": "click", "sel": "#storyboard_compose_pose input"},
        {"do": "click", "sel": "#storyboard_compose_pose li", "hasText": "sitting"},
        {"do": "number", "sel": "#storyboard_compose_width", "value": 384},
        {"do": "click", "sel": "#storyboard_compose_make"},
        {"do": "wait", "sel": "#storyboard_compose_status .prose", "match": "framed"},
        {"do": "image", "sel": "#storyboard_compose_result"},
        {"do": "text", "sel": "#storyboard_compose_note"},
        {"do": "visible", "sel": "#storyboard_compose_send"},
        {"do": "screenshot", "path": os.path.join(shots, "storyboard-compose.png"), "full": True})[-5:]
    assert status == "'sitting' framed as a medium shot.", status
    assert size == [384, 512], size
    assert "needs the sd-webui-controlnet extension" in note and send is False, (note, send)
    # The reference photo path without a photo: one sentence, no picture.
    error = browser.run({"do": "click", "sel": "#storyboard_compose_source label", "hasText": "Reference photo"},
                        {"do": "click", "sel": "#storyboard_compose_make"},
                        {"do": "wait", "sel": "#storyboard_compose_status .prose", "match": "photo first"})[-1]
    assert error == "Choose a reference photo first.", error
    assert "Traceback" not in host.log(), host.log_tail()
