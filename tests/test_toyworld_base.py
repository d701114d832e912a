"""The toy base's architecture and its training script (a few steps only; the real run is tools/train_toy_base.py)."""
from __future__ import annotations

import json
import os
import runpy

import pytest
import torch

from lib_storyboard.toyworld.base_arch import CANDIDATES, build_text_encoder, build_unet, build_vae, param_count

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("name", ["xs", "s"])
def test_candidates_keep_what_a1111_assumes_and_ship_small(name):
    arch = CANDIDATES[name]
    unet, vae, te = build_unet(arch), build_vae(arch), build_text_encoder(arch)
    with torch.no_grad():
        lat = vae.encode(torch.zeros(1, 3, 64, 64)).latent_dist.mean
    assert lat.shape == (1, 4, 8, 8)                                   # latent = image / 8
    assert len(vae.config.block_out_channels) == 4
    assert unet.config.layers_per_block == 2 and len(unet.config.block_out_channels) == 4
    assert unet.config.cross_attention_dim == te.config.hidden_size
    assert te.config.vocab_size == 49408 and te.config.max_position_embeddings == 77
    for c in tuple(unet.config.block_out_channels) + tuple(vae.config.block_out_channels):
        assert c % 32 == 0                                             # LDM's GroupNorm(32)
    fp16_bytes = 2 * sum(param_count(m) for m in (unet, vae, te))
    assert fp16_bytes <= 25 * 2 ** 20


def test_training_script_writes_a_loadable_model_with_its_recipe(tmp_path):
    from diffusers import StableDiffusionPipeline

    out = str(tmp_path / "toy")
    script = runpy.run_path(os.path.join(ROOT, "tools", "train_toy_base.py"))
    script["main"](["--out", out, "--panels", "12", "--vae-steps", "2", "--unet-steps", "2", "--samples", "2",
                    "--sample-steps", "2", "--threads", "1", "--seed", "3", "--vae-batch", "4", "--unet-batch", "4"])
    recipe = json.load(open(os.path.join(out, "recipe.json")))
    assert recipe["args"]["seed"] == 3 and recipe["arch"] == json.loads(json.dumps(CANDIDATES["s"].as_dict()))
    assert recipe["metrics"]["unconditional_samples"]["n"] == 2 and recipe["metrics"]["scaling_factor"] > 0
    assert os.path.isfile(os.path.join(out, "samples.png")) and not os.path.exists(out + ".tmp")
    pipe = StableDiffusionPipeline.from_pretrained(out, torch_dtype=torch.float32, safety_checker=None)
    assert pipe.unet.dtype == torch.float32 and pipe.tokenizer("a person waving").input_ids[0] == 49406
    img = pipe("a sketch of a person waving", num_inference_steps=2, height=64, width=64,
               generator=torch.Generator().manual_seed(0), output_type="np").images[0]
    assert img.shape == (64, 64, 3)


def test_training_script_also_writes_a_single_file_checkpoint_our_trainer_loads(tmp_path):
    from lib_storyboard.adapters.diffusers_sd15 import load_single_file

    out = str(tmp_path / "toy")
    script = runpy.run_path(os.path.join(ROOT, "tools", "train_toy_base.py"))
    script["main"](["--out", out, "--panels", "12", "--vae-steps", "2", "--unet-steps", "2", "--samples", "2",
                    "--sample-steps", "2", "--threads", "1", "--seed", "4", "--vae-batch", "4", "--unet-batch", "4"])
    ad = load_single_file(os.path.join(out, "toybase.safetensors"))
    assert ad.hidden_size == CANDIDATES["s"].text_width == ad.unet.config.cross_attention_dim
    assert ad.vae_scale_factor == 8 and ad.model_name == "toybase"
    assert len(ad.lora_targets(False)) > 0


def test_training_script_continues_a_base_keeping_its_vae_and_recording_its_parent(tmp_path):
    from safetensors.torch import load_file

    from lib_storyboard.models import toybase_path

    parent = toybase_path()
    out = str(tmp_path / "cont")
    script = runpy.run_path(os.path.join(ROOT, "tools", "train_toy_base.py"))
    script["main"](["--init", parent, "--out", out, "--panels", "12", "--unet-steps", "2", "--samples", "2",
                    "--sample-steps", "2", "--threads", "1", "--seed", "5", "--unet-batch", "4"])
    recipe = json.load(open(os.path.join(out, "recipe.json")))
    shipped = json.load(open(os.path.join(os.path.dirname(parent), "recipe.json")))
    assert recipe["args"]["init"] == "toybase.safetensors"            # the name, never a machine path
    assert recipe["parent"]["args"] == shipped["args"] and len(recipe["parent"]["file_hash"]) == 10
    assert recipe["metrics"]["scaling_factor"] == round(shipped["metrics"]["scaling_factor"], 5)
    old, new = load_file(parent), load_file(os.path.join(out, "toybase.safetensors"))
    assert old.keys() == new.keys()
    vae = [k for k in old if k.startswith("first_stage_model.")]
    unet = [k for k in old if k.startswith("model.diffusion_model.")]
    assert vae and all(torch.equal(old[k], new[k]) for k in vae)       # the VAE is kept as it was
    assert any(not torch.equal(old[k], new[k]) for k in unet)          # the UNet went on learning


def test_decoder_fine_tuning_changes_the_decoder_alone(tmp_path):
    from safetensors.torch import load_file

    from lib_storyboard.models import toybase_path

    parent = toybase_path()
    out = str(tmp_path / "dec")
    script = runpy.run_path(os.path.join(ROOT, "tools", "train_toy_base.py"))
    script["main"](["--init", parent, "--out", out, "--panels", "12", "--decoder-steps", "3", "--unet-steps", "0",
                    "--samples", "2", "--sample-steps", "2", "--threads", "1", "--seed", "6", "--vae-batch", "4"])
    recipe = json.load(open(os.path.join(out, "recipe.json")))
    assert recipe["args"]["decoder_steps"] == 3 and recipe["metrics"]["decoder_seconds"] > 0
    old, new = load_file(parent), load_file(os.path.join(out, "toybase.safetensors"))
    decoder = [k for k in old if k.startswith(("first_stage_model.decoder.", "first_stage_model.post_quant_conv."))]
    kept = [k for k in old if k not in decoder]
    assert decoder and all(torch.equal(old[k], new[k]) for k in kept)   # encoder, UNet, text encoder: the latent
    assert any(not torch.equal(old[k], new[k]) for k in decoder)        # space and what draws in it stay as they were
