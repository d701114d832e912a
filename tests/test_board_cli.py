"""`python -m lib_storyboard board` on the shipped toy base with a storyboard model trained here, the shot judge
reading the drawn panels; and bad input answered with sentences and exit code 2 before any model loads."""
import json
import os

import pytest
from PIL import Image

from lib_storyboard.cli import main
from lib_storyboard.models import toybase_path
from lib_storyboard.toyworld.judge import judge_shot
from lib_storyboard.toyworld.proof import HELDOUT_SEED_OFFSET, TOY_RECIPE
from lib_storyboard.toyworld.sketches import SHOT_KEYS, panel_seed, tags_and_caption, write_dataset

# A short run of the toy recipe: 60 steps on 8 sketches per shot (about 20 s on one core). Measured on this board
# (9 panels, per-panel seeds): 6 of 9 panels drawn as their scene's shot; chance is 3.
STEPS, PER_SHOT, MIN_RIGHT = 60, 8, 5


@pytest.fixture(scope="module")
def storyboard_model(tmp_path_factory):
    from lib_storyboard.adapters.diffusers_sd15 import load_single_file
    from lib_storyboard.training.config import TrainConfig
    from lib_storyboard.training.outputs import OutputPaths
    from lib_storyboard.training.trainer import Trainer

    work = tmp_path_factory.mktemp("model")
    write_dataset(str(work / "data"), PER_SHOT, 64, 0)
    cfg = TrainConfig.from_dict({**TOY_RECIPE, "max_steps": STEPS, "name": "board", "data_dir": str(work / "data"),
                                 "seed": 0})
    adapter = load_single_file(toybase_path())
    Trainer(adapter, cfg, OutputPaths.under(str(work))).run()
    adapter.close()
    return OutputPaths.under(str(work)).lora_file("board")


def test_board_command_draws_each_scenes_framing(storyboard_model, tmp_path, capsys):
    # Scenes in the toy world's own words (captions of scenes the model never saw), framings in turn.
    lines = [f'{SHOT_KEYS[k % 3]} | {tags_and_caption(panel_seed(7 + HELDOUT_SEED_OFFSET, k))[1]} | "Panel {k + 1}"'
             for k in range(9)]
    (tmp_path / "scenes.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rc = main(["board", "--scenes", str(tmp_path / "scenes.txt"), "--out", str(tmp_path / "out"),
               "--storyboard", storyboard_model, "--set", "seed_policy=per_panel", "--set", "seed=1",
               "--set", "title=Toy board"])
    out = capsys.readouterr().out
    assert rc == 0
    (folder,) = os.listdir(tmp_path / "out")
    folder = str(tmp_path / "out" / folder)
    for fn in ["board.png", "board.pdf", "board.json"] + [f"panel-00{i}.png" for i in range(1, 10)]:
        assert f"wrote {os.path.join(folder, fn)}" in out
    board = json.load(open(os.path.join(folder, "board.json"), encoding="utf-8"))
    assert board["model"]["checkpoint"] == "toybase" and board["model"]["storyboard"] == "board"
    assert board["options"]["width"] == 64 and board["options"]["cfg"] == 2.0     # the toy base's defaults
    judged = [judge_shot(Image.open(os.path.join(folder, p["file"]))) for p in board["panels"]]
    right = sum(j.figure and j.shot == p["shot"] for j, p in zip(judged, board["panels"]))
    assert right >= MIN_RIGHT, [j.shot for j in judged]


def test_a_board_panel_is_the_proofs_sample_of_the_same_prompt_and_seed(storyboard_model):
    """The board's drawer is the sampler the proof measures (same tokens, LoRA, guidance and steps), so a board's
    panels are read at the proof's rate: pixel for pixel, up to rounding between batch sizes."""
    import numpy as np

    from lib_storyboard.adapters.diffusers_sd15 import load_single_file
    from lib_storyboard.board.draw import diffusers_drawer
    from lib_storyboard.board.options import BoardOptions
    from lib_storyboard.board.prompts import plan_panel
    from lib_storyboard.board.scenes import Scene
    from lib_storyboard.storyboard_models import token_vectors
    from lib_storyboard.toyworld.proof import generation_confusion
    from lib_storyboard.training.lora import lora_attached

    adapter = load_single_file(toybase_path())
    captions = [tags_and_caption(panel_seed(7 + HELDOUT_SEED_OFFSET, k))[1] for k in (0, 3)]
    with lora_attached(adapter, storyboard_model):
        _, proof = generation_confusion(adapter, token_vectors(storyboard_model), captions, [11, 12])
    options = BoardOptions(width=64, height=64, cfg=2.0)
    with diffusers_drawer(adapter, options, storyboard_model) as draw:
        for key in SHOT_KEYS:
            for i, caption in enumerate(captions):
                plan = plan_panel(Scene(1, key, caption, "", 11 + i), 0, options)
                panel = np.asarray(draw(plan.prompt, plan.negative, plan.seed, 64, 64), np.int16)
                assert np.abs(panel - np.asarray(proof[key][i], np.int16)).max() <= 1, (key, i)
    adapter.close()


def test_bad_scene_lists_and_options_exit_2_with_sentences_and_write_nothing(tmp_path, capsys):
    (tmp_path / "s.txt").write_text("XL | a tree |\ncu |  | hi\n", encoding="utf-8")
    rc = main(["board", "--scenes", str(tmp_path / "s.txt"), "--out", str(tmp_path / "out"), "--set", "columns=0"])
    err = capsys.readouterr().err
    assert rc == 2 and err.splitlines() == [
        "error: Line 1: unknown shot 'XL'; use cu, ms, fs (or close-up, medium shot, full shot), or none or - for "
        "no shot.", "error: Line 2: the description is empty."]
    (tmp_path / "ok.txt").write_text("cu | a tree |\n", encoding="utf-8")
    rc = main(["board", "--scenes", str(tmp_path / "ok.txt"), "--out", str(tmp_path / "out"), "--set", "columns=0",
               "--set", "colour=red"])
    assert rc == 2 and capsys.readouterr().err.splitlines() == [
        "error: 'columns' must be between 1 and 8.", "error: 'colour' is not a board option."]
    rc = main(["board", "--scenes", str(tmp_path / "ok.txt"), "--set", "columns"])
    assert rc == 2 and capsys.readouterr().err.strip() == "error: --set takes key=value, not 'columns'."
    rc = main(["board", "--scenes", str(tmp_path / "ok.txt"), "--storyboard", str(tmp_path / "none.safetensors")])
    assert rc == 2 and "does not exist." in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out")
