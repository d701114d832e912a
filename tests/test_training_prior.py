"""Prior preservation on the shipped toy base: class images drawn by the checkpoint, cached per checkpoint and
prompt, reused by a later run; weight 0 is the plain run, bit for bit."""
import os

import pytest
import torch
from safetensors import safe_open

from lib_storyboard.adapters.diffusers_sd15 import load_single_file
from lib_storyboard.models import toybase_path
from lib_storyboard.toyworld.sketches import write_dataset
from lib_storyboard.training.config import ConfigError, TrainConfig
from lib_storyboard.training.outputs import OutputPaths
from lib_storyboard.training.trainer import Trainer

FAST = dict(resolution=64, batch_size=4, max_steps=3, rank=4, alpha=4.0, vectors_per_token=1, min_timestep=700)
PRIOR = dict(prior_loss_weight=1.0, class_images=3, class_steps=3, class_cfg=2.0)


@pytest.fixture(scope="module")
def adapter():
    ad = load_single_file(toybase_path())
    yield ad
    ad.close()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("data"))
    write_dataset(d, 2, 64, 0)
    return d


def train(adapter, data, out, **kw):
    messages = []
    cfg = TrainConfig.from_dict({**FAST, "data_dir": data, **kw})
    res = Trainer(adapter, cfg, OutputPaths.under(out), on_event=lambda e: messages.append(e.message)).run()
    return res, messages


def tensors(out, name):
    with safe_open(OutputPaths.under(out).lora_file(name), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def class_files(out):
    root = os.path.join(out, "state", "class_images")
    return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
            for d, _, fs in os.walk(root) for f in fs if f.endswith(".png")}


def test_class_images_are_drawn_once_then_reused(adapter, data, tmp_path):
    out = str(tmp_path)
    first, msgs = train(adapter, data, out, name="p1", **PRIOR)
    assert first.status == "finished" and first.step == 3
    assert first.report["class_images"] == {"per_shot": 3, "drawn": 9, "reused": 0,
                                            "folder": os.path.join(out, "state", "class_images")}
    files = class_files(out)
    assert len(files) == 9                          # one folder per shot prompt: close-up, medium shot, full shot
    assert any("9 drawn now" in m for m in msgs)

    second, msgs = train(adapter, data, out, name="p2", **PRIOR)   # another model name, the same checkpoint
    assert second.report["class_images"]["drawn"] == 0 and second.report["class_images"]["reused"] == 9
    assert class_files(out) == files                # nothing redrawn or rewritten
    a, b = tensors(out, "p1"), tensors(out, "p2")
    assert all(torch.equal(a[k], b[k]) for k in a)  # cached images give the run the fresh ones gave

    plain, _ = train(adapter, data, out, name="p3")
    c = tensors(out, "p3")
    assert any(not torch.equal(a[k], c[k]) for k in a if "lora_up" in k)   # the prior loss changed what was learned

    # Other sampler settings are other class images: a new folder, drawn again.
    third, _ = train(adapter, data, out, name="p4", **{**PRIOR, "class_steps": 4, "class_prompt": "a sketch, {shot}"})
    assert third.report["class_images"]["drawn"] == 9 and len(class_files(out)) == 18


def test_weight_zero_is_the_plain_run_exactly(adapter, data, tmp_path):
    plain, _ = train(adapter, data, str(tmp_path / "a"), name="w")
    off, _ = train(adapter, data, str(tmp_path / "b"), name="w", **{**PRIOR, "prior_loss_weight": 0.0})
    assert "class_images" not in off.report and not os.path.exists(tmp_path / "b" / "state" / "class_images")
    a, b = tensors(str(tmp_path / "a"), "w"), tensors(str(tmp_path / "b"), "w")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert plain.loss == off.loss


def test_class_prompt_must_not_name_a_trigger():
    with pytest.raises(ConfigError) as e:
        TrainConfig.from_dict({"class_prompt": "<cu_trg>, a sketch"})
    assert e.value.errors["class_prompt"] == ("'class_prompt' must not contain a shot trigger (<cu_trg>): class "
                                              "images show what the checkpoint draws without one.")
