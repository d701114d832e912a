"""The standalone CLI on a real single-file checkpoint (LDM keys) with its config folder beside it."""
import os
import subprocess
import sys

import pytest
from safetensors.torch import save_file

from lib_storyboard.cli import main
from lib_storyboard.formats.ldm_checkpoint import diffusers_to_ldm, write_config_dir
from lib_storyboard.formats.lora_file import load_lora
from lib_storyboard.models.tiny import tiny_components
from lib_storyboard.toyworld.sketches import write_dataset


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    c = tiny_components(seed=3)
    sd = diffusers_to_ldm(c.unet.state_dict(), c.vae.state_dict(), c.text_encoder.state_dict(), c.unet.config,
                          c.vae.config)
    path = str(d / "tiny.safetensors")
    save_file({k: v.contiguous() for k, v in sd.items()}, path)
    write_config_dir(str(d / "tiny.config"), c.unet, c.vae, c.text_encoder, c.scheduler)
    return path


def test_cli_trains_a_single_file_checkpoint(checkpoint, tmp_path, capsys):
    data = tmp_path / "data"
    write_dataset(str(data), 2, 64, 0, layout="folders")
    out = tmp_path / "out"
    rc = main(["train", "--model", checkpoint, "--data", str(data), "--out", str(out), "--name", "cli1",
               "--steps", "2", "--resolution", "64", "--set", "batch_size=2", "--set", "rank=2"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "finished at step 2" in text and "cli1.safetensors" in text
    layers, bundle, meta = load_lora(str(out / "Lora" / "cli1.safetensors"))
    assert meta["ss_sd_model_name"] == "tiny" and meta["ss_network_dim"] == "2"
    assert len(bundle) == 3


def test_cli_bad_options_are_sentences(checkpoint, tmp_path, capsys):
    rc = main(["train", "--model", checkpoint, "--data", str(tmp_path), "--set", "rank=0", "--set", "nope=1"])
    err = capsys.readouterr().err
    assert rc == 2 and "'rank' must be between 1 and 256." in err and "'nope' is not a training option." in err


def test_cli_refuses_pickles_and_missing_files(tmp_path):
    bad = tmp_path / "model.ckpt"
    bad.write_bytes(b"not a model")
    r = subprocess.run([sys.executable, "-m", "lib_storyboard", "train", "--model", str(bad), "--data", str(tmp_path)],
                       capture_output=True, text=True, env={**os.environ})
    assert r.returncode == 2 and "Only .safetensors checkpoints can be loaded" in r.stderr
    assert "Traceback" not in r.stderr


def test_demo_runs_on_the_shipped_toy_base_and_writes_its_sheet(tmp_path, capsys):
    import json

    from lib_storyboard.demo import run_demo

    out = tmp_path / "demo"
    assert run_demo(str(out), steps=4, per_token=2) == 0
    text = capsys.readouterr().out
    assert "base model: toy-world base" in text and "storyboard sheet" in text
    report = json.load(open(out / "demo-report.json"))
    assert report["steps"] == 4 and sum(map(sum, report["trained_gen"]["matrix"])) == 6
    assert os.path.isfile(out / "storyboard-sheet.png") and os.path.isfile(out / "Lora" / "demo.safetensors")
    # It ends with a board drawn by the board command's path, its panels judged.
    board = report["board"]
    assert board["panels"] == 9 and 0 <= board["judged_right"] <= 9 and f"board: {board['judged_right']}/9" in text
    assert os.path.isfile(board["pdf"]) and len(os.listdir(os.path.dirname(board["png"]))) == 12
