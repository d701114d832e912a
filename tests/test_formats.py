"""The files the product writes: kohya LoRA, embeddings, card sidecars, SD1 single-file checkpoints and configs.

Checked against independent readers: diffusers' own single-file and kohya-LoRA converters, peft, safetensors, and
restatements of A1111 v1.10's documented rules (shared/docs/host-api.md 4.2 and 5.2) with hand-worked SD1.5 names.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import re

import pytest
import torch
from torch import nn

from lib_storyboard.formats.embeddings import EmbeddingFormatError, load_embedding, save_embedding
from lib_storyboard.formats.kohya_names import (LayerNameError, compvis_to_diffusers_unet, diffusers_to_compvis_unet,
                                                kohya_te_name, kohya_unet_name)
from lib_storyboard.formats.ldm_checkpoint import (SD15_DIR, CheckpointFormatError, diffusers_to_ldm,
                                                   save_ldm_checkpoint, sd15_config_dir, write_config_dir,
                                                   write_ldm_yaml)
from lib_storyboard.formats.lora_file import LoraFormatError, LoraLayer, addnet_hash, load_lora, save_lora, ss_metadata
from lib_storyboard.formats.safetensors_io import FormatError
from lib_storyboard.formats.sidecar import SidecarError, read_sidecar, write_sidecar
from lib_storyboard.models.tiny import tiny_components


def _sd15_json(rel: str) -> dict:
    with open(os.path.join(SD15_DIR, rel), encoding="utf-8") as f:
        return json.load(f)


def _public(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if not k.startswith("_")}


@pytest.fixture(scope="module")
def tiny():
    return tiny_components(seed=0)


@pytest.fixture(scope="module")
def sd15():
    """SD1.5's UNet, VAE and CLIP-L built from the shipped configs on the meta device (no memory, no weights)."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with init_empty_weights():
        unet = UNet2DConditionModel(**_public(_sd15_json("unet/config.json")))
        vae = AutoencoderKL(**_public(_sd15_json("vae/config.json")))
        text = CLIPTextModel(CLIPTextConfig(**_sd15_json("text_encoder/config.json")))
    return unet, vae, text


def _lora_targets(model: nn.Module, want=(nn.Linear, nn.Conv2d)) -> dict[str, nn.Module]:
    """The UNet attention sub-modules a LoRA trains (attention and feed-forward linears, proj_in/proj_out)."""
    return {n: m for n, m in model.named_modules() if isinstance(m, want) and ".attentions." in n}


def _te_targets(text_encoder: nn.Module) -> dict[str, nn.Module]:
    return {n: m for n, m in text_encoder.named_modules()
            if isinstance(m, nn.Linear) and re.search(r"\.(q_proj|k_proj|v_proj|out_proj|fc1|fc2)$", n)}


# ---------------------------------------------------------------------------------------------------------------
# 1. Layer names

# A kohya key and the module A1111 v1.10 resolves it to: `convert_diffusers_name_to_compvis` (3 blocks per level
# hard-coded, attentions at `_1_`) looked up in the ldm modules named with dots as underscores. Worked out by hand
# from the SD1.5 ldm layout: input_blocks 1,2 | 4,5 | 7,8 carry attention, output_blocks 3..11 do.
A1111_SD15 = [
    ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q",
     "diffusion_model_input_blocks_1_1_transformer_blocks_0_attn1_to_q"),
    ("lora_unet_down_blocks_0_attentions_1_transformer_blocks_0_attn2_to_k",
     "diffusion_model_input_blocks_2_1_transformer_blocks_0_attn2_to_k"),
    ("lora_unet_down_blocks_1_attentions_0_proj_in", "diffusion_model_input_blocks_4_1_proj_in"),
    ("lora_unet_down_blocks_1_attentions_1_transformer_blocks_0_ff_net_0_proj",
     "diffusion_model_input_blocks_5_1_transformer_blocks_0_ff_net_0_proj"),
    ("lora_unet_down_blocks_2_attentions_0_transformer_blocks_0_attn1_to_out_0",
     "diffusion_model_input_blocks_7_1_transformer_blocks_0_attn1_to_out_0"),
    ("lora_unet_down_blocks_2_attentions_1_proj_out", "diffusion_model_input_blocks_8_1_proj_out"),
    ("lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_v",
     "diffusion_model_middle_block_1_transformer_blocks_0_attn2_to_v"),
    ("lora_unet_up_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q",
     "diffusion_model_output_blocks_3_1_transformer_blocks_0_attn1_to_q"),
    ("lora_unet_up_blocks_1_attentions_2_proj_out", "diffusion_model_output_blocks_5_1_proj_out"),
    ("lora_unet_up_blocks_2_attentions_1_transformer_blocks_0_ff_net_2",
     "diffusion_model_output_blocks_7_1_transformer_blocks_0_ff_net_2"),
    ("lora_unet_up_blocks_3_attentions_0_transformer_blocks_0_attn2_to_out_0",
     "diffusion_model_output_blocks_9_1_transformer_blocks_0_attn2_to_out_0"),
    ("lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_attn2_to_k",
     "diffusion_model_output_blocks_11_1_transformer_blocks_0_attn2_to_k"),
]


def test_kohya_names_match_hand_checked_a1111_names(sd15):
    unet, _, text = sd15
    by_kohya = {kohya_unet_name(p): p for p in _lora_targets(unet)}
    for kohya, host in A1111_SD15:
        path = by_kohya[kohya]
        compvis = diffusers_to_compvis_unet(path)
        assert "diffusion_model_" + compvis.replace(".", "_") == host
        assert compvis_to_diffusers_unet("diffusion_model." + compvis) == path
    assert kohya_unet_name("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q") == \
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
    assert kohya_te_name("text_model.encoder.layers.0.self_attn.q_proj") == \
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj"
    assert kohya_te_name("transformer.text_model.encoder.layers.11.mlp.fc2") == \
        "lora_te_text_model_encoder_layers_11_mlp_fc2"
    assert set(map(kohya_te_name, _te_targets(text))) >= {"lora_te_text_model_encoder_layers_11_mlp_fc2"}


def test_non_attention_paths_are_refused():
    for bad in ("output_blocks.2.1.conv", "input_blocks.3.1.transformer_blocks.0.attn1.to_q",  # 3 = downsampler
                "input_blocks.1.0.in_layers.2", "time_embed.0"):
        with pytest.raises(LayerNameError):
            compvis_to_diffusers_unet(bad)
    for bad in ("down_blocks.0.attentions.2.proj_in", "up_blocks.1.resnets.0.conv1", "up_blocks.1.attentions.3.norm"):
        with pytest.raises(LayerNameError):
            diffusers_to_compvis_unet(bad)
    with pytest.raises(LayerNameError):
        kohya_te_name("encoder.layers.0.self_attn.q_proj")


def _unet_ldm(unet, sd: dict | None = None) -> dict:
    return diffusers_to_ldm(sd if sd is not None else unet.state_dict(), {}, {}, unet.config,
                            _sd15_json("vae/config.json"))


@pytest.mark.parametrize("which", ["tiny", "sd15", "one_layer"])
def test_attention_paths_round_trip_and_agree_with_diffusers(which, tiny, sd15):
    """Every attention module maps diffusers -> compvis -> diffusers identically; its compvis weight is a key of our
    LDM conversion, and diffusers' own LDM->diffusers converter maps the whole UNet back to the same tensors."""
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    if which == "tiny":
        unet, expected = tiny.unet, 2 * 12 + 12 + 3 * 12  # down level 0, mid, up level 1
    elif which == "sd15":
        unet, expected = sd15[0], 16 * 12  # SD1.5: 6 down, 1 mid, 9 up transformer blocks
    else:
        with init_empty_weights():
            unet = UNet2DConditionModel(
                sample_size=32, layers_per_block=1, block_out_channels=(32, 64, 64),
                down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32)
        expected = (2 * 1 + 1 + 2 * 2) * 12
    layers = unet.config.layers_per_block
    targets = _lora_targets(unet)
    assert len(targets) == expected
    sd = unet.state_dict()
    ldm = _unet_ldm(unet, sd)
    assert len(ldm) == len(sd)
    for path in targets:
        compvis = diffusers_to_compvis_unet(path, layers)
        assert compvis_to_diffusers_unet(compvis, layers) == path
        assert ldm["model.diffusion_model." + compvis + ".weight"] is sd[path + ".weight"]
    back = convert_ldm_unet_checkpoint(ldm, dict(unet.config))
    assert set(back) == set(sd)
    assert all(back[k] is sd[k] for k in sd)


# ---------------------------------------------------------------------------------------------------------------
# 2. LoRA files

def _random_lora(targets: dict[str, nn.Module], rank: int, alpha: float, name_fn, scale: float = 0.1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    layers = {}
    for path, m in targets.items():
        if isinstance(m, nn.Conv2d):
            down = torch.randn(rank, m.in_channels, *m.kernel_size, generator=g) * scale
            up = torch.randn(m.out_channels, rank, generator=g) * scale
        else:
            down = torch.randn(rank, m.in_features, generator=g) * scale
            up = torch.randn(m.out_features, rank, generator=g) * scale
        layers[name_fn(path)] = LoraLayer(down=down, up=up, alpha=alpha)
    return layers


def _meta(**kw) -> dict:
    args = dict(output_name="storyboard_test", dim=4, alpha=2.0, resolution=512, clip_skip=1, num_train_images=12,
                tag_frequency={"sketches": {"cu_trg": 4, "close-up": 4, "girl": 7}}, base_model_name="toy-sd15",
                training_started_at=1700000000.5, trigger_words=["<cu_trg>", "<ms_trg>", "<fs_trg>"],
                extra={"storyboard_steps": 20})
    args.update(kw)
    return ss_metadata(**args)


def test_lora_round_trip_and_layout(tmp_path, tiny):
    from safetensors import safe_open

    targets = _lora_targets(tiny.unet)
    layers = _random_lora(targets, rank=4, alpha=2.0, name_fn=kohya_unet_name)
    layers.update(_random_lora(_te_targets(tiny.text_encoder), rank=2, alpha=1.0, name_fn=kohya_te_name, seed=1))
    bundle = {s: torch.randn(2, 32) for s in ("cu_trg", "ms_trg", "fs_trg")}
    path = str(tmp_path / "storyboard_test.safetensors")
    written = save_lora(path, layers, bundle, _meta())

    with safe_open(path, framework="pt") as f:
        keys, meta = set(f.keys()), f.metadata()
        conv = "lora_unet_down_blocks_0_attentions_0_proj_in"
        assert f.get_tensor(f"{conv}.lora_up.weight").shape == (32, 4, 1, 1)  # hosts build a 1x1 conv for it
        assert f.get_tensor(f"{conv}.lora_down.weight").shape == (4, 32, 1, 1)
        assert f.get_tensor(f"{conv}.alpha").dim() == 0
        assert f.get_tensor("bundle_emb.cu_trg.string_to_param.*").dtype == torch.float32
        assert f.get_tensor(f"{conv}.lora_down.weight").dtype == torch.float16
    assert len(keys) == 3 * len(layers) + 3
    assert all("." not in k.split(".", 1)[0] for k in keys)  # A1111 splits the layer name at the first dot
    assert meta == written and all(isinstance(v, str) for v in meta.values())
    assert json.loads(meta["storyboard_tokens"]) == ["cu_trg", "ms_trg", "fs_trg"]
    assert json.loads(meta["storyboard_vectors_per_token"]) == {"cu_trg": 2, "ms_trg": 2, "fs_trg": 2}

    got, got_bundle, got_meta = load_lora(path)
    assert set(got) == set(layers) and got_meta == meta
    for name, layer in layers.items():
        assert got[name].alpha == layer.alpha and got[name].up.dim() == 2
        assert torch.equal(got[name].down, layer.down.half()) and torch.equal(got[name].up, layer.up.half())
        torch.testing.assert_close(got[name].delta(), layer.delta(), atol=2e-4, rtol=2e-3)
    assert all(torch.equal(got_bundle[s], bundle[s]) for s in bundle)


def test_lora_hash_is_the_addnet_payload_hash(tmp_path):
    layers = {"lora_unet_mid_block_attentions_0_proj_in": LoraLayer(torch.ones(2, 8, 1, 1), torch.ones(8, 2), 2.0)}
    a, b = str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors")
    meta_a = save_lora(a, layers, None, _meta())
    meta_b = save_lora(b, layers, None, _meta(output_name="other", extra={"note": "metadata differs"}))
    with open(a, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")  # safetensors: u64 header length, header, then the tensor bytes
    assert meta_a["sshs_model_hash"] == hashlib.sha256(data[8 + n:]).hexdigest() == addnet_hash(a)
    assert meta_b["sshs_model_hash"] == meta_a["sshs_model_hash"]  # metadata edits keep the hash, as in kohya


def test_ss_metadata_reads_as_an_sd1_lora():
    meta = _meta(resolution=(512, 768), tag_frequency={"girl": 3})
    assert all(isinstance(v, str) for v in meta.values())
    assert meta["ss_network_module"] == "networks.lora" and meta["ss_base_model_version"] == "sd_v1"
    assert meta["ss_v2"] == "False" and meta["ss_resolution"] == "(512, 768)"
    assert meta["ss_network_dim"] == "4" and float(meta["ss_network_alpha"]) == 2.0
    assert meta["ss_output_name"] == "storyboard_test" and meta["ss_sd_model_name"] == "toy-sd15"
    assert json.loads(meta["ss_tag_frequency"]) == {"storyboard_test": {"girl": 3}}
    assert meta["ss_tag_frequency"].startswith("{")  # A1111 json-decodes values starting with '{'
    assert float(meta["ss_training_started_at"]) == 1700000000.5
    assert meta["modelspec.trigger_phrase"] == "<cu_trg>, <ms_trg>, <fs_trg>"
    assert json.loads(meta["storyboard_trigger_words"]) == ["<cu_trg>", "<ms_trg>", "<fs_trg>"]
    assert meta["storyboard_steps"] == "20" and meta["storyboard_format_version"] == "1"


def test_lora_bad_input_is_refused_without_a_file(tmp_path):
    good = LoraLayer(torch.ones(2, 4), torch.ones(4, 2), 1.0)
    path = str(tmp_path / "x.safetensors")
    cases = [
        ({"lora_unet_a.b": good}, None, {}),  # dotted layer name
        ({"lora_unet_a": LoraLayer(torch.ones(2, 4), torch.ones(4, 3), 1.0)}, None, {}),  # rank mismatch
        ({"lora_unet_a": LoraLayer(torch.full((2, 4), float("nan")), torch.ones(4, 2), 1.0)}, None, {}),
        ({"lora_unet_a": good}, {"cu.trg": torch.ones(1, 4)}, {}),  # dotted embedding name
        ({"lora_unet_a": good}, None, {"ss_network_dim": 4}),  # non-string metadata
    ]
    for layers, bundle, meta in cases:
        with pytest.raises(LoraFormatError):
            save_lora(path, layers, bundle, meta)
    with pytest.raises(LoraFormatError):
        save_lora(str(tmp_path / "x.pt"), {"lora_unet_a": good}, None, {})
    assert os.listdir(tmp_path) == []  # no half-written or temporary file

    pt = tmp_path / "old.pt"
    torch.save({"a": torch.ones(1)}, pt)
    with pytest.raises(FormatError, match="Only .safetensors"):
        load_lora(str(pt))
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(FormatError, match="not a readable safetensors"):
        load_lora(str(broken))


def _a1111_layer_name(key: str) -> str:
    """A1111 v1.10's SD1 key mapping for the keys we write, restated from host-api.md 5.2 (not our code):
    diffusers-style kohya names with 3 ldm blocks per level, then the compvis-name fallback."""
    for pattern, fmt in (
            (r"lora_unet_down_blocks_(\d+)_attentions_(\d+)_(.+)",
             lambda i, j, r: f"input_blocks_{1 + 3 * i + j}_1_{r}"),
            (r"lora_unet_up_blocks_(\d+)_attentions_(\d+)_(.+)", lambda i, j, r: f"output_blocks_{3 * i + j}_1_{r}")):
        m = re.fullmatch(pattern, key)
        if m:
            return "diffusion_model_" + fmt(int(m.group(1)), int(m.group(2)), m.group(3))
    m = re.fullmatch(r"lora_unet_mid_block_attentions_0_(.+)", key)
    if m:
        return "diffusion_model_middle_block_1_" + m.group(1)
    m = re.fullmatch(r"lora_te_text_model_encoder_layers_(\d+)_(.+)", key)
    if m:
        return f"transformer_text_model_encoder_layers_{m.group(1)}_{m.group(2)}"
    return "diffusion_model_" + key[len("lora_unet_"):] if key.startswith("lora_unet_") else key


@pytest.mark.parametrize("layers_per_block", [2, 1])
def test_written_keys_match_every_host_module(tmp_path, sd15, layers_per_block):
    """Each key of a file covering every attention module resolves, by A1111's rules, to a distinct module of the
    ldm model with the right weight shape, and every ldm attention module is covered: nothing dropped."""
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel
    from safetensors import safe_open

    unet, _, text = sd15
    if layers_per_block == 1:  # a scaled-down base: A1111's hard-coded arithmetic needs compvis-style names
        with init_empty_weights():
            unet = UNet2DConditionModel(
                sample_size=32, layers_per_block=1, block_out_channels=(32, 64, 64),
                down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=768)
    # rank 1 keeps the file small; the shapes are the real ones
    layers = _random_lora(_lora_targets(unet), 1, 1.0, lambda p: kohya_unet_name(p, layers_per_block))
    layers.update(_random_lora(_te_targets(text), 1, 1.0, kohya_te_name))
    path = str(tmp_path / "all.safetensors")
    save_lora(path, layers, {"cu_trg": torch.zeros(1, 768)}, _meta())

    ldm = _unet_ldm(unet)
    host_weights = {k[len("model."):-len(".weight")].replace(".", "_"): v.shape
                    for k, v in ldm.items() if k.endswith(".weight")}
    host_weights.update({"transformer_" + k[:-len(".weight")].replace(".", "_"): v.shape
                         for k, v in text.state_dict().items() if k.endswith(".weight")})
    host_attention = {n for n in host_weights if re.search(r"blocks_\d+_1_|middle_block_1_", n)
                      and not re.search(r"(norm\d?|_1_conv)$", n)}  # norms; upsamplers
    with safe_open(path, framework="pt") as f:
        resolved = {}
        for key in f.keys():
            layer, _, part = key.partition(".")
            if layer == "bundle_emb":
                continue
            host = _a1111_layer_name(layer)
            assert host in host_weights, f"{key} -> {host} matches no module"
            resolved.setdefault(host, {})[part] = f.get_tensor(key)
    assert len(resolved) == len(layers)
    assert host_attention <= set(resolved)  # every UNet attention module covered
    for host, w in resolved.items():
        up, down = w["lora_up.weight"], w["lora_down.weight"]
        assert (up.shape[0], *down.shape[1:]) == tuple(host_weights[host])


def test_lora_loads_through_diffusers_and_peft_with_the_same_meaning(tmp_path, tiny):
    """diffusers' kohya converter + peft give each module exactly up @ down * alpha / r: same UNet output as merging
    the deltas by hand, and the same text-encoder deltas."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers, convert_state_dict_to_peft, \
        convert_unet_state_dict_to_peft
    from diffusers.utils.peft_utils import get_peft_kwargs
    from peft import LoraConfig, inject_adapter_in_model, set_peft_model_state_dict
    from safetensors.torch import load_file

    unet_targets, te_targets = _lora_targets(tiny.unet), _te_targets(tiny.text_encoder)
    layers = _random_lora(unet_targets, rank=4, alpha=2.0, name_fn=kohya_unet_name, scale=0.3)
    layers.update(_random_lora(te_targets, rank=4, alpha=2.0, name_fn=kohya_te_name, scale=0.3, seed=3))
    path = str(tmp_path / "sb.safetensors")
    save_lora(path, layers, {"cu_trg": torch.randn(2, 32)}, _meta())
    # what we mean: the deltas of the layers we saved, at the fp16 precision they are stored in
    meant = {k: LoraLayer(v.down.half().float(), v.up.half().float(), v.alpha).delta() for k, v in layers.items()}

    # diffusers refuses files with non-LoRA keys, so the bundled embeddings are set aside first
    kohya = {k: v for k, v in load_file(path).items() if not k.startswith("bundle_emb.")}
    state, alphas = StableDiffusionPipeline.lora_state_dict(kohya)

    # the UNet, as diffusers' UNet2DConditionLoadersMixin._process_lora does it
    unet_sd = convert_unet_state_dict_to_peft({k[5:]: v for k, v in state.items() if k.startswith("unet.")})
    unet_alpha = convert_unet_state_dict_to_peft({k[5:]: v for k, v in alphas.items() if k.startswith("unet.")})
    ranks = {k: v.shape[1] for k, v in unet_sd.items() if "lora_B" in k}
    unet = copy.deepcopy(tiny.unet)
    inject_adapter_in_model(LoraConfig(**get_peft_kwargs(ranks, unet_alpha, unet_sd, is_unet=True)), unet, "sb")
    res = set_peft_model_state_dict(unet, unet_sd, "sb")
    assert not [k for k in res.unexpected_keys if "lora" in k]
    merged = copy.deepcopy(tiny.unet)
    for p in unet_targets:
        delta = meant[kohya_unet_name(p)]
        torch.testing.assert_close(unet.get_submodule(p).get_delta_weight("sb"), delta, atol=1e-6, rtol=1e-5)
        merged.get_submodule(p).weight.data += delta
    g = torch.Generator().manual_seed(0)
    x, t, ctx = torch.randn(1, 4, 16, 16, generator=g), torch.tensor([500]), torch.randn(1, 7, 32, generator=g)
    with torch.no_grad():
        base_out = tiny.unet(x, t, ctx).sample
        lora_out, merged_out = unet(x, t, ctx).sample, merged(x, t, ctx).sample
    torch.testing.assert_close(lora_out, merged_out, atol=1e-5, rtol=1e-4)
    assert (lora_out - base_out).abs().max() > 1e-3  # the LoRA does change the output

    # the text encoder, as load_lora_into_text_encoder does it
    te_sd = convert_state_dict_to_peft(convert_state_dict_to_diffusers(
        {k[13:]: v for k, v in state.items() if k.startswith("text_encoder.")}))
    te_alpha = {k[13:]: v for k, v in alphas.items() if k.startswith("text_encoder.")}
    ranks = {k: v.shape[1] for k, v in te_sd.items() if "lora_B" in k}
    te = copy.deepcopy(tiny.text_encoder)
    inject_adapter_in_model(LoraConfig(**get_peft_kwargs(ranks, te_alpha, te_sd, is_unet=False)), te, "sb")
    res = set_peft_model_state_dict(te, te_sd, "sb")
    assert not [k for k in res.unexpected_keys if "lora" in k]
    for p in te_targets:
        torch.testing.assert_close(te.get_submodule(p).get_delta_weight("sb"), meant[kohya_te_name(p)],
                                   atol=1e-6, rtol=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# 3. Embeddings

def test_embedding_file_meets_the_hosts_rules(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    vec = torch.randn(3, 768)
    path = str(tmp_path / "cu_trg.safetensors")
    save_embedding(path, vec, name="cu_trg", step=120, checkpoint_hash="abcdef0123", checkpoint_name="toy")
    data = load_file(path)  # the loader A1111 uses for .safetensors embeddings
    assert list(data) == ["emb_params"]  # a single key: A1111's "diffusers concept" form
    first = next(iter(data.values()))
    assert isinstance(first, torch.Tensor) and first.dtype == torch.float32 and first.shape == (3, 768)
    assert torch.equal(first, vec)
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
    assert meta["step"] == "120" and meta["sd_checkpoint"] == "abcdef0123" and meta["sd_checkpoint_name"] == "toy"
    assert torch.equal(load_embedding(path), vec)

    save_embedding(path, torch.randn(768), name="cu_trg", step=1, checkpoint_hash="", checkpoint_name="")
    assert load_file(path)["emb_params"].shape == (1, 768)


def test_embedding_loader_forms_and_refusals(tmp_path):
    from safetensors.torch import save_file

    classic = str(tmp_path / "classic.safetensors")
    save_file({"string_to_param.*": torch.ones(2, 8)}, classic)
    assert load_embedding(classic).shape == (2, 8)
    other = str(tmp_path / "other.safetensors")
    save_file({"whatever": torch.ones(8)}, other)
    assert load_embedding(other).shape == (1, 8)
    for name, tensors in (("two.safetensors", {"a": torch.ones(1, 8), "b": torch.ones(1, 8)}),
                          ("xl.safetensors", {"clip_l": torch.ones(1, 768), "clip_g": torch.ones(1, 1280)}),
                          ("nan.safetensors", {"emb_params": torch.full((1, 8), float("nan"))})):
        save_file(tensors, str(tmp_path / name))
        with pytest.raises(EmbeddingFormatError):
            load_embedding(str(tmp_path / name))
    torch.save({"string_to_param": {"*": torch.ones(1, 8)}}, tmp_path / "old.pt")
    with pytest.raises(FormatError, match="Only .safetensors"):
        load_embedding(str(tmp_path / "old.pt"))
    with pytest.raises(EmbeddingFormatError):
        save_embedding(str(tmp_path / "e.safetensors"), torch.ones(1, 2, 3), name="e", step=0, checkpoint_hash="",
                       checkpoint_name="")
    with pytest.raises(EmbeddingFormatError):
        save_embedding(str(tmp_path / "e.pt"), torch.ones(1, 8), name="e", step=0, checkpoint_hash="",
                       checkpoint_name="")
    assert not (tmp_path / "e.safetensors").exists() and not (tmp_path / "e.pt").exists()


# ---------------------------------------------------------------------------------------------------------------
# 4. Card sidecars

def test_sidecar_json_and_preview(tmp_path):
    from PIL import Image

    lora = str(tmp_path / "storyboard_test.safetensors")
    img = Image.new("RGB", (48, 32), (200, 30, 30))
    paths = write_sidecar(lora, activation_text="<cu_trg>", preferred_weight=0.8, negative_text="blurry",
                          description="Shot tokens", notes="trained 20 steps", preview=img)
    assert [os.path.basename(p) for p in paths] == ["storyboard_test.json", "storyboard_test.preview.png"]
    with open(paths[0], encoding="utf-8") as f:
        data = json.load(f)
    assert data == {"description": "Shot tokens", "sd version": "SD1", "activation text": "<cu_trg>",
                    "preferred weight": 0.8, "negative text": "blurry", "notes": "trained 20 steps"}
    assert read_sidecar(lora) == data
    with Image.open(paths[1]) as png:
        assert png.format == "PNG" and png.size == (48, 32) and png.getpixel((3, 3)) == (200, 30, 30)
    assert sorted(os.listdir(tmp_path)) == ["storyboard_test.json", "storyboard_test.preview.png"]
    with pytest.raises(SidecarError):
        write_sidecar(lora, activation_text="x", preferred_weight=5)
    with pytest.raises(SidecarError):
        write_sidecar(lora, activation_text="x", preview=b"GIF89a")
    assert read_sidecar(str(tmp_path / "none.safetensors")) == {}


# ---------------------------------------------------------------------------------------------------------------
# 5. Single-file checkpoints and configs

def test_tiny_checkpoint_loads_back_bit_identical(tmp_path, tiny):
    from diffusers import StableDiffusionPipeline

    c = tiny
    ldm = diffusers_to_ldm(c.unet.state_dict(), c.vae.state_dict(), c.text_encoder.state_dict(),
                           c.unet.config, c.vae.config)
    assert ldm["first_stage_model.encoder.mid.attn_1.q.weight"].shape == (64, 64, 1, 1)  # ldm VAE attention: conv
    ckpt = str(tmp_path / "tiny.safetensors")
    save_ldm_checkpoint(ckpt, ldm, {"format": "pt"})
    cfg_dir = write_config_dir(str(tmp_path / "cfg"), c.unet, c.vae, c.text_encoder.config, c.scheduler)
    pipe = StableDiffusionPipeline.from_single_file(ckpt, config=cfg_dir, local_files_only=True,
                                                    safety_checker=None, requires_safety_checker=False)
    for name in ("unet", "vae", "text_encoder"):
        want, got = getattr(c, name).state_dict(), getattr(pipe, name).state_dict()
        assert set(got) == set(want), name
        assert all(torch.equal(got[k], want[k]) for k in want), name
    assert type(pipe.scheduler).__name__ == "DDPMScheduler"
    assert pipe.tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_sd15_layout_has_the_known_key_names(sd15):
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    unet, vae, text = sd15
    ldm = diffusers_to_ldm(unet.state_dict(), vae.state_dict(), text.state_dict(), unet.config, vae.config)
    shapes = {  # well-known names and shapes of SD1.5 single-file checkpoints
        "model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3),
        "model.diffusion_model.input_blocks.3.0.op.weight": (320, 320, 3, 3),
        "model.diffusion_model.input_blocks.4.0.skip_connection.weight": (640, 320, 1, 1),
        "model.diffusion_model.input_blocks.8.1.transformer_blocks.0.attn2.to_k.weight": (1280, 768),
        "model.diffusion_model.middle_block.1.proj_in.weight": (1280, 1280, 1, 1),
        "model.diffusion_model.middle_block.2.out_layers.3.weight": (1280, 1280, 3, 3),
        "model.diffusion_model.output_blocks.2.1.conv.weight": (1280, 1280, 3, 3),
        "model.diffusion_model.output_blocks.5.2.conv.weight": (1280, 1280, 3, 3),
        "model.diffusion_model.output_blocks.8.2.conv.weight": (640, 640, 3, 3),
        "model.diffusion_model.output_blocks.11.1.proj_out.weight": (320, 320, 1, 1),
        "model.diffusion_model.time_embed.2.weight": (1280, 1280),
        "model.diffusion_model.out.2.weight": (4, 320, 3, 3),
        "first_stage_model.encoder.mid.attn_1.q.weight": (512, 512, 1, 1),
        "first_stage_model.encoder.down.0.downsample.conv.weight": (128, 128, 3, 3),
        "first_stage_model.decoder.up.0.block.2.conv2.weight": (128, 128, 3, 3),
        "first_stage_model.decoder.up.1.block.0.nin_shortcut.weight": (256, 512, 1, 1),
        "first_stage_model.decoder.up.3.upsample.conv.weight": (512, 512, 3, 3),
        "first_stage_model.quant_conv.weight": (8, 8, 1, 1),
        "cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc2.weight": (768, 3072),
        "cond_stage_model.transformer.text_model.final_layer_norm.weight": (768,),
    }
    for key, shape in shapes.items():
        assert tuple(ldm[key].shape) == shape, key
    n_unet = sum(k.startswith("model.diffusion_model.") for k in ldm)
    n_vae = sum(k.startswith("first_stage_model.") for k in ldm)
    assert (n_unet, n_vae) == (686, 248)  # the tensor counts of every SD1.5 single file
    back = convert_ldm_vae_checkpoint(ldm, dict(vae.config))
    assert set(back) == set(vae.state_dict())
    assert all(back[k].shape == v.shape for k, v in vae.state_dict().items())


def test_conversion_refuses_what_ldm_cannot_express(tmp_path, tiny):
    c = tiny
    cfg = dict(c.unet.config, norm_num_groups=16)
    with pytest.raises(CheckpointFormatError, match="norm_num_groups"):
        diffusers_to_ldm(c.unet.state_dict(), {}, {}, cfg, c.vae.config)
    cfg = dict(c.unet.config, up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
    with pytest.raises(CheckpointFormatError, match="mirror"):
        diffusers_to_ldm(c.unet.state_dict(), {}, {}, cfg, c.vae.config)
    with pytest.raises(CheckpointFormatError, match="no place"):
        diffusers_to_ldm({"extra.weight": torch.ones(1)}, {}, {}, c.unet.config, c.vae.config)
    with pytest.raises(CheckpointFormatError, match="_class_name"):  # a bare config does not say which scheduler
        write_config_dir(str(tmp_path), c.unet, c.vae, c.text_encoder, c.scheduler.config)


# The SD1.5 entries of A1111's configs/v1-inference.yaml (the config every SD1.5 single file loads with).
V1_INFERENCE = {
    "target": "ldm.models.diffusion.ddpm.LatentDiffusion",
    "params": {"linear_start": 0.00085, "linear_end": 0.012, "timesteps": 1000, "image_size": 64, "channels": 4,
               "conditioning_key": "crossattn", "scale_factor": 0.18215},
    "unet": {"in_channels": 4, "out_channels": 4, "model_channels": 320, "attention_resolutions": [4, 2, 1],
             "num_res_blocks": 2, "channel_mult": [1, 2, 4, 4], "num_heads": 8, "use_spatial_transformer": True,
             "transformer_depth": 1, "context_dim": 768, "legacy": False},
    "ddconfig": {"double_z": True, "z_channels": 4, "in_channels": 3, "out_ch": 3, "ch": 128, "ch_mult": [1, 2, 4, 4],
                 "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0},
}


def test_ldm_yaml_for_sd15_matches_v1_inference(tmp_path):
    import yaml

    path = str(tmp_path / "sd15.yaml")
    write_ldm_yaml(path, _sd15_json("unet/config.json"), _sd15_json("vae/config.json"), 768,
                   text_config=_sd15_json("text_encoder/config.json"),
                   scheduler_config=_sd15_json("scheduler/scheduler_config.json"))
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)["model"]
    assert doc["target"] == V1_INFERENCE["target"]
    assert {k: doc["params"][k] for k in V1_INFERENCE["params"]} == V1_INFERENCE["params"]
    unet = doc["params"]["unet_config"]
    assert unet["target"] == "ldm.modules.diffusionmodules.openaimodel.UNetModel"
    assert {k: unet["params"][k] for k in V1_INFERENCE["unet"]} == V1_INFERENCE["unet"]
    vae = doc["params"]["first_stage_config"]
    assert vae["target"] == "ldm.models.autoencoder.AutoencoderKL" and vae["params"]["embed_dim"] == 4
    assert {k: vae["params"]["ddconfig"][k] for k in V1_INFERENCE["ddconfig"]} == V1_INFERENCE["ddconfig"]
    assert doc["params"]["cond_stage_config"] == {"target": "ldm.modules.encoders.modules.FrozenCLIPEmbedder"}
    assert not (tmp_path / "sd15-clip").exists()


def test_ldm_yaml_for_a_scaled_down_base_reads_back_in_diffusers(tmp_path, tiny):
    """diffusers' own ldm-yaml reader derives the tiny UNet/VAE configs from our yaml; the narrow CLIP gets a local
    config + tokenizer folder that transformers loads."""
    import yaml
    from diffusers.loaders.single_file_utils import (create_unet_diffusers_config_from_ldm,
                                                     create_vae_diffusers_config_from_ldm)
    from transformers import CLIPTextConfig, CLIPTokenizer

    c = tiny
    path = str(tmp_path / "toy.yaml")
    write_ldm_yaml(path, c.unet.config, c.vae.config, 32, text_config=c.text_encoder.config,
                   scheduler_config=c.scheduler.config)
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    ldm = diffusers_to_ldm(c.unet.state_dict(), c.vae.state_dict(), c.text_encoder.state_dict(),
                           c.unet.config, c.vae.config)
    ucfg = create_unet_diffusers_config_from_ldm(doc, ldm)
    for key in ("in_channels", "out_channels", "layers_per_block", "cross_attention_dim", "attention_head_dim",
                "use_linear_projection"):
        assert ucfg[key] == c.unet.config[key], key
    for key in ("block_out_channels", "down_block_types", "up_block_types"):
        assert list(ucfg[key]) == list(c.unet.config[key]), key
    vcfg = create_vae_diffusers_config_from_ldm(doc, ldm)
    for key in ("in_channels", "out_channels", "latent_channels", "layers_per_block", "scaling_factor"):
        assert vcfg[key] == c.vae.config[key], key
    assert list(vcfg["block_out_channels"]) == list(c.vae.config.block_out_channels)

    version = doc["model"]["params"]["cond_stage_config"]["params"]["version"]
    assert os.path.isabs(version) and os.path.dirname(version) == str(tmp_path)
    te = CLIPTextConfig.from_pretrained(version)
    assert (te.hidden_size, te.num_hidden_layers, te.intermediate_size) == (32, 5, 37)
    assert CLIPTokenizer.from_pretrained(version)("a cat").input_ids == [49406, 320, 2368, 49407]
    with pytest.raises(CheckpointFormatError):
        write_ldm_yaml(str(tmp_path / "bad.yaml"), c.unet.config, c.vae.config, 768)
    with pytest.raises(CheckpointFormatError):
        write_ldm_yaml(str(tmp_path / "bad.yaml"), c.unet.config, c.vae.config, 32)  # no text_config


def test_shipped_sd15_configs_are_sd15(tmp_path, sd15):
    unet, vae, text = sd15
    u, v = _sd15_json("unet/config.json"), _sd15_json("vae/config.json")
    t, s = _sd15_json("text_encoder/config.json"), _sd15_json("scheduler/scheduler_config.json")
    assert (u["block_out_channels"], u["layers_per_block"], u["cross_attention_dim"], u["attention_head_dim"],
            u["sample_size"], u["use_linear_projection"]) == ([320, 640, 1280, 1280], 2, 768, 8, 64, False)
    assert (v["block_out_channels"], v["latent_channels"], v["scaling_factor"]) == ([128, 256, 512, 512], 4, 0.18215)
    assert (t["hidden_size"], t["num_hidden_layers"], t["num_attention_heads"], t["intermediate_size"],
            t["hidden_act"], t["max_position_embeddings"], t["vocab_size"]) == \
        (768, 12, 12, 3072, "quick_gelu", 77, 49408)
    assert (s["_class_name"], s["beta_start"], s["beta_end"], s["beta_schedule"], s["num_train_timesteps"],
            s["steps_offset"]) == ("PNDMScheduler", 0.00085, 0.012, "scaled_linear", 1000, 1)
    # the published parameter counts of SD1.5's UNet (859.52 M), VAE (83.65 M) and CLIP ViT-L/14 text model
    counts = [sum(p.numel() for p in m.parameters()) for m in (unet, vae, text)]
    assert counts == [859_520_964, 83_653_863, 123_060_480]

    # the shipped files are exactly what write_config_dir makes of these configs
    regen = write_config_dir(str(tmp_path / "regen"), unet, vae, t, s)
    for rel in ("model_index.json", "unet/config.json", "vae/config.json", "text_encoder/config.json",
                "scheduler/scheduler_config.json"):
        with open(os.path.join(regen, rel), encoding="utf-8") as f:
            assert _public(json.load(f)) == _public(_sd15_json(rel)), rel
    d = sd15_config_dir(str(tmp_path / "cache"))
    from transformers import CLIPTokenizer
    assert CLIPTokenizer.from_pretrained(d, subfolder="tokenizer")("a photo of a cat").input_ids == \
        [49406, 320, 1125, 539, 320, 2368, 49407]
    with open(os.path.join(d, "model_index.json"), encoding="utf-8") as f:
        assert json.load(f)["safety_checker"] == [None, None]
