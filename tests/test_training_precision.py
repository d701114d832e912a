"""One precision decision for every adapter: autocast dtype and GradScaler from the request, device and weights."""
import pytest
import torch

from lib_storyboard.adapters.diffusers_sd15 import DiffusersSD15
from lib_storyboard.models.tiny import tiny_components
from lib_storyboard.toyworld.sketches import write_dataset
from lib_storyboard.training.adapter import UnsupportedModel
from lib_storyboard.training.config import TrainConfig
from lib_storyboard.training.outputs import OutputPaths
from lib_storyboard.training.precision import Precision, decide_precision, load_dtype
from lib_storyboard.training.trainer import Trainer

F32, F16, BF16 = torch.float32, torch.float16, torch.bfloat16

# requested, device, bf16 supported, weights → autocast dtype, GradScaler
DECISIONS = [
    ("auto", "cpu", False, F32, None, False),      # CPU trains in fp32 whatever was asked
    ("fp16", "cpu", False, F32, None, False),
    ("bf16", "cpu", True, F32, None, False),
    ("fp32", "cpu", False, F32, None, False),
    ("auto", "cuda", True, F16, F16, True),        # the host's fp16 weights: fp16 compute, scaled gradients
    ("auto", "cuda", False, F16, F16, True),
    ("auto", "cuda", True, BF16, BF16, False),
    ("auto", "cuda", True, F32, None, False),      # full-precision weights (--no-half) stay full precision
    ("fp32", "cuda", True, F32, None, False),
    ("fp16", "cuda", True, F32, F16, True),
    ("fp16", "cuda", True, BF16, F16, True),
    ("bf16", "cuda", True, F32, BF16, False),
    ("bf16", "cuda", True, BF16, BF16, False),
    ("bf16", "cuda", True, F16, BF16, True),       # fp16 weights still put fp16 tensors in the graph
]


@pytest.mark.parametrize("requested, device, bf16_ok, weights, autocast, scaler", DECISIONS)
def test_precision_decisions(requested, device, bf16_ok, weights, autocast, scaler):
    assert decide_precision(requested, device, bf16_ok, weights) == Precision(autocast, scaler)


@pytest.mark.parametrize("requested, device, bf16_ok, weights, words", [
    ("fp32", "cuda", True, F16, "fp32 needs fp32 weights"),
    ("fp32", "cuda", True, BF16, "fp32 needs fp32 weights"),
    ("bf16", "cuda", False, F16, "does not support bf16"),
    ("auto", "cpu", False, F16, "needs fp32 weights"),
    ("auto", "mps", False, F16, "needs fp32 weights"),
    ("auto", "cuda", True, torch.float8_e4m3fn, "cannot be trained"),
])
def test_impossible_precisions_are_refused_in_one_sentence(requested, device, bf16_ok, weights, words):
    with pytest.raises(UnsupportedModel, match=words) as e:
        decide_precision(requested, device, bf16_ok, weights)
    assert str(e.value).endswith(".") and str(e.value).count(". ") == 0


@pytest.mark.parametrize("requested, device, dtype", [
    ("fp32", "cuda", F32), ("auto", "cuda", F16), ("fp16", "cuda", F16), ("bf16", "cuda", BF16),
    ("auto", "cpu", F32), ("fp16", "cpu", F32), ("bf16", "cpu", F32),
])
def test_loaders_load_the_weights_the_decision_accepts(requested, device, dtype):
    assert load_dtype(requested, device) == dtype
    bf16_ok = True
    assert decide_precision(requested, device, bf16_ok, load_dtype(requested, device)) is not None


def test_fp32_trains_a_step_on_the_diffusers_path(tmp_path):
    write_dataset(str(tmp_path / "data"), 1, 64, 0)
    ad = DiffusersSD15.from_components(tiny_components(seed=0), weight_dtype=load_dtype("fp32", "cpu"))
    cfg = TrainConfig.from_dict(dict(data_dir=str(tmp_path / "data"), resolution=64, batch_size=2, rank=2,
                                     alpha=2.0, max_steps=1, precision="fp32"))
    res = Trainer(ad, cfg, OutputPaths.under(str(tmp_path / "out"))).run()
    assert res.status == "finished" and res.step == 1


def test_half_weights_on_the_cpu_are_refused_before_any_work(tmp_path):
    write_dataset(str(tmp_path / "data"), 1, 64, 0)
    ad = DiffusersSD15.from_components(tiny_components(seed=0), weight_dtype=F16)
    cfg = TrainConfig.from_dict(dict(data_dir=str(tmp_path / "data"), resolution=64, max_steps=1))
    trainer = Trainer(ad, cfg, OutputPaths.under(str(tmp_path / "out")))
    with pytest.raises(UnsupportedModel, match="needs fp32 weights"):
        trainer.run()
    assert trainer.vae_encodes == 0 and not (tmp_path / "out").exists()
