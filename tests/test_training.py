"""The pivotal-tuning engine on tiny real-architecture SD1.5 parts, the real CLIP tokenizer and real files."""
import json
import os

import pytest
import torch
from safetensors import safe_open

from lib_storyboard import shots, storyboard_models
from lib_storyboard.adapters.diffusers_sd15 import DiffusersSD15
from lib_storyboard.adapters.text_splice import layout
from lib_storyboard.dataset.scan import DatasetError
from lib_storyboard.formats.embeddings import load_embedding
from lib_storyboard.formats.lora_file import load_lora
from lib_storyboard.models.tiny import tiny_components
from lib_storyboard.toyworld.sketches import write_dataset
from lib_storyboard.training.config import ConfigError, TrainConfig
from lib_storyboard.training.lora import LoraSet
from lib_storyboard.training.outputs import OutputPaths
from lib_storyboard.training.state import StateError
from lib_storyboard.training.trainer import Trainer

FAST = dict(resolution=64, batch_size=2, vectors_per_token=2, rank=4, alpha=4.0, preview_every=0, caption_dropout=0.1)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    write_dataset(str(d), 3, 64, 0)
    return str(d)


def adapter():
    return DiffusersSD15.from_components(tiny_components(seed=0))


def train(data, out, stop_after=None, **kw):
    cfg = TrainConfig.from_dict({**FAST, "data_dir": data, **kw})
    steps = []
    should_stop = (lambda: len(steps) >= stop_after) if stop_after else None
    ad = adapter()
    result = Trainer(ad, cfg, OutputPaths.under(out), on_event=lambda e: steps.append(e) if e.kind == "step" else None,
                     should_stop=should_stop).run()
    ad.close()
    return result


def test_training_writes_every_output(data, tmp_path):
    res = train(data, str(tmp_path), name="m1", max_steps=4, ti_frac=1.0, preview_every=4, preview_steps=2)
    assert res.status == "finished" and res.step == 4
    assert res.report["counts"] == {"cu": 3, "ms": 3, "fs": 3}
    paths = OutputPaths.under(str(tmp_path))
    layers, bundle, meta = load_lora(paths.lora_file("m1"))
    ad = adapter()
    names = {n for n, _ in ad.lora_targets(False)}
    assert set(layers) == names                      # one LoRA layer per attention Linear/1x1 conv, none missing
    assert set(bundle) == set(shots.STEMS) and all(v.shape == (2, 32) for v in bundle.values())
    assert meta["ss_network_dim"] == "4" and meta["ss_base_model_version"] == "sd_v1"
    assert json.loads(meta["ss_tag_frequency"])["m1"]["<cu_trg>"] == 3
    assert any(float(l.up.abs().max()) > 0 for l in layers.values())   # the LoRA moved off zero
    for stem in shots.STEMS:
        vec = load_embedding(paths.embedding_file("m1", stem))
        assert torch.allclose(vec, bundle[stem])
        init = ad.token_init(shots.BY_STEM[stem].init_words, 2)
        assert not torch.allclose(vec, init)          # the tokens trained
    side = json.load(open(os.path.join(paths.lora_dir, "m1.json")))
    assert side["sd version"] == "SD1" and "<ms_trg>" in side["activation text"]
    assert os.path.isfile(os.path.join(paths.lora_dir, "m1.preview.png"))
    found = storyboard_models.find_model([paths.lora_dir], None)
    assert found.name == "m1" and found.step == 4
    assert set(storyboard_models.token_vectors(found.path)) == set(shots.STEMS)
    assert res.vae_encodes == 9                        # latents cached: one VAE encode per image for the run


def test_pivot_freezes_tokens_after_their_phase(data, tmp_path):
    res = train(data, str(tmp_path), name="m2", max_steps=3, ti_frac=0.0)
    ad = adapter()
    for stem in shots.STEMS:
        vec = load_embedding(OutputPaths.under(str(tmp_path)).embedding_file("m2", stem))
        assert torch.equal(vec, ad.token_init(shots.BY_STEM[stem].init_words, 2))
    assert res.step == 3


def test_timestep_range_bounds_the_training_timesteps(data, tmp_path):
    ad = adapter()
    seen = []
    predict = ad.predict
    ad.predict = lambda x, t, c: (seen.extend(t.tolist()), predict(x, t, c))[1]
    cfg = TrainConfig.from_dict({**FAST, "data_dir": data, "max_steps": 6, "min_timestep": 900, "max_timestep": 950})
    Trainer(ad, cfg, OutputPaths.under(str(tmp_path))).run()
    assert len(seen) >= 6 and all(900 <= t <= 950 for t in seen) and len(set(seen)) > 3


def test_interrupt_and_resume_end_where_an_uninterrupted_run_ends(data, tmp_path):
    kw = dict(name="m3", max_steps=6, ti_frac=0.5, lora_dropout=0.1, noise_offset=0.05)
    full = train(data, str(tmp_path / "a"), **kw)
    part = train(data, str(tmp_path / "b"), stop_after=3, **kw)
    assert part.status == "interrupted" and part.step == 3
    resumed = train(data, str(tmp_path / "b"), resume=True, **kw)
    assert full.step == resumed.step == 6
    la, ba, _ = load_lora(OutputPaths.under(str(tmp_path / "a")).lora_file("m3"))
    lb, bb, _ = load_lora(OutputPaths.under(str(tmp_path / "b")).lora_file("m3"))
    for stem in shots.STEMS:
        assert torch.allclose(ba[stem], bb[stem], atol=1e-6)
    for n in la:
        assert torch.allclose(la[n].up.float(), lb[n].up.float(), atol=1e-3)
    with safe_open(os.path.join(tmp_path / "a", "state", "m3", "state.safetensors"), "pt") as fa, \
            safe_open(os.path.join(tmp_path / "b", "state", "m3", "state.safetensors"), "pt") as fb:
        for k in fa.keys():
            assert torch.allclose(fa.get_tensor(k).float(), fb.get_tensor(k).float(), atol=1e-6), k


def test_resume_refuses_other_settings_and_missing_state(data, tmp_path):
    with pytest.raises(StateError, match="no saved training state"):
        train(data, str(tmp_path), name="none", max_steps=2, resume=True)
    train(data, str(tmp_path), name="m4", max_steps=2)
    with pytest.raises(StateError, match="rank"):
        train(data, str(tmp_path), name="m4", max_steps=4, rank=8, resume=True)


def test_dataset_problems_are_one_sentence(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError):
        train(str(empty), str(tmp_path / "o"), max_steps=1)
    unl = tmp_path / "unlabelled"
    write_dataset(str(unl), 2, 64, 1, layout="none")
    with pytest.raises(DatasetError, match="6 without a shot"):
        train(str(unl), str(tmp_path / "o"), max_steps=1)
    assert not os.path.exists(tmp_path / "o" / "Lora")     # nothing half-written


def test_config_errors_name_each_field():
    with pytest.raises(ConfigError) as e:
        TrainConfig.from_dict({"name": "../evil", "max_steps": 0, "ti_frac": 2, "bogus": 1})
    assert set(e.value.errors) == {"name", "max_steps", "ti_frac", "bogus"}
    assert all(msg.endswith(".") for msg in e.value.errors.values())
    with pytest.raises(ConfigError) as e:
        TrainConfig.from_dict({"max_steps": "many"})
    assert "integer" in e.value.errors["max_steps"]
    cfg = TrainConfig.from_dict({"preset": "low-vram", "rank": 6})
    assert cfg.gradient_checkpointing and cfg.rank == 6      # the user's value wins over the preset
    with pytest.raises(ConfigError) as e:
        TrainConfig.from_dict({"min_timestep": 800, "max_timestep": 700})
    assert set(e.value.errors) == {"max_timestep"}


def test_splice_layout_matches_the_hosts_token_matching():
    tok = tiny_components().tokenizer
    rows, splices = layout(tok, ["<cu_trg>, a man", "a <ms_trg> b", "plain"], {"cu_trg": 2, "ms_trg": 3})
    # `<` stays a token, the stem's 4 BPE ids become 2 slots, then `>,` (29) and `,` follow as in A1111
    assert rows[0][:6] == [49406, 283, 0, 0, 29, 267]
    assert [(s.row, s.offset, s.stem) for s in splices] == [(0, 2, "cu_trg"), (1, 3, "ms_trg")]
    assert all(len(r) == 77 for r in rows) and rows[2][-1] == 49407


def test_lora_hooks_start_at_the_base_and_detach_cleanly():
    c = tiny_components()
    ad = DiffusersSD15.from_components(c)
    x = torch.randn(1, 4, 8, 8)
    t = torch.tensor([10])
    cond = torch.randn(1, 77, 32)
    base = ad.predict(x, t, cond)
    lora = LoraSet(ad.lora_targets(True), rank=4, alpha=4, seed=0)
    lora.attach()
    assert torch.equal(ad.predict(x, t, cond), base)        # up is zero at the start
    with torch.no_grad():
        for layer in lora.layers:
            layer.up.weight.normal_()
    assert not torch.allclose(ad.predict(x, t, cond), base)
    lora.detach()
    assert torch.equal(ad.predict(x, t, cond), base)


def test_batched_sampling_gives_each_seed_its_own_image():
    from lib_storyboard.training.preview import sample

    ad = adapter()
    tokens = {s.stem: ad.token_init(s.init_words, 2) for s in shots.SHOTS}
    prompts = ["<cu_trg>, a person", "<ms_trg>, a person", "<fs_trg>, a person"]
    one = sample(ad, prompts, tokens, [1, 2, 3], (64, 64), steps=3, cfg=3.0, batch=1)
    three = sample(ad, prompts, tokens, [1, 2, 3], (64, 64), steps=3, cfg=3.0, batch=2)
    for a, b in zip(one, three):          # batching changes rounding only, never which noise an image gets
        assert abs(torch.tensor(list(a.getdata())).float() - torch.tensor(list(b.getdata())).float()).max() <= 2
    assert list(one[0].getdata()) != list(one[2].getdata())


def test_classifier_reads_only_the_given_timestep_range():
    from lib_storyboard.toyworld.proof import diffusion_loss_confusion, heldout_panels

    ad = adapter()
    seen = []
    predict = ad.predict
    ad.predict = lambda x, t, c: (seen.extend(t.tolist()), predict(x, t, c))[1]
    tokens = {s.stem: ad.token_init(s.init_words, 2) for s in shots.SHOTS}
    c = diffusion_loss_confusion(ad, tokens, heldout_panels(1, 64, 0), timesteps=4, t_range=(700, 999))
    assert c.matrix.sum() == 3 and all(700 <= t <= 999 for t in seen) and len(set(seen)) == 4


def _snapshot(root):
    """Every file under `root` → (bytes, mtime_ns)."""
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            with open(p, "rb") as f:
                out[p] = (f.read(), os.stat(p).st_mtime_ns)
    return out


def test_a_run_that_learned_nothing_leaves_the_saved_model_alone(data, tmp_path):
    kw = dict(name="m5", ti_frac=0.5)
    train(data, str(tmp_path), max_steps=2, **kw)
    before = _snapshot(tmp_path)
    # A new run of the same name, interrupted while its latents are being cached.
    cfg = TrainConfig.from_dict({**FAST, "data_dir": data, "max_steps": 2, **kw})
    events = []
    res = Trainer(adapter(), cfg, OutputPaths.under(str(tmp_path)), on_event=events.append,
                  should_stop=lambda: True).run()
    assert res.status == "interrupted" and res.step == 0 and res.files == []
    assert res.vae_encodes == 1                              # it stopped at the first image
    assert not [e for e in events if e.kind == "saved"]
    assert "nothing was learned" in events[-1].message and events[-1].kind == "done"
    assert _snapshot(tmp_path) == before                     # byte-identical, not even rewritten
    # A resumed run interrupted before its first new step changes nothing either.
    stop = []
    cfg = TrainConfig.from_dict({**FAST, "data_dir": data, "max_steps": 4, "resume": True, **kw})
    res = Trainer(adapter(), cfg, OutputPaths.under(str(tmp_path)),
                  on_event=lambda e: stop.append(1) if e.message.startswith("Resumed") else None,
                  should_stop=lambda: bool(stop)).run()
    assert res.status == "interrupted" and res.step == 2 and res.files == []
    assert _snapshot(tmp_path) == before
    # and Resume still continues from the old state
    res = train(data, str(tmp_path), max_steps=4, resume=True, **kw)
    assert res.status == "finished" and res.step == 4
    # Resuming a run that has no steps left rewrites nothing either.
    after = _snapshot(tmp_path)
    res = train(data, str(tmp_path), max_steps=4, resume=True, **kw)
    assert res.status == "finished" and res.step == 4 and res.files == [] and _snapshot(tmp_path) == after


def test_8bit_adamw_without_bitsandbytes_says_so(data, tmp_path):
    cfg = TrainConfig.from_dict({**FAST, "data_dir": data, "max_steps": 1, "optimizer": "adamw8bit"})
    events = []
    res = Trainer(adapter(), cfg, OutputPaths.under(str(tmp_path)), on_event=events.append).run()
    sentence = ("8-bit AdamW needs bitsandbytes on a CUDA GPU, which is not available here, so 32-bit AdamW is "
                "used (more memory).")
    assert res.report["warnings"] == [sentence]
    assert [e.message for e in events if e.kind == "status"].count(sentence) == 1
    res = train(data, str(tmp_path), max_steps=1, optimizer="adamw")
    assert "warnings" not in res.report


def test_long_captions_are_capped_once_before_any_adapter_sees_them(tmp_path):
    from lib_storyboard.dataset.captions import MAX_TOKENS, token_counter

    data = tmp_path / "data"
    write_dataset(str(data), 1, 64, 0)
    long_tags = [f"prop number {i}" for i in range(200)]
    for txt in data.glob("*.txt"):
        txt.write_text(txt.read_text().strip() + ", " + ", ".join(long_tags) + "\n")
    ad = adapter()
    seen = []
    encode = ad.encode_text
    ad.encode_text = lambda captions, tokens: (seen.extend(captions), encode(captions, tokens))[1]
    cfg = TrainConfig.from_dict({**FAST, "data_dir": str(data), "max_steps": 3, "vectors_per_token": 8,
                                 "caption_dropout": 0.0, "shuffle_tags": False})
    Trainer(ad, cfg, OutputPaths.under(str(tmp_path / "out"))).run()
    tok = ad.tokenizer
    vectors = {s.stem: 8 for s in shots.SHOTS}
    count = token_counter(tok, vectors)
    assert len(seen) >= 3
    for cap in seen:
        parts = cap.split(", ")
        assert parts[0] in shots.TRIGGERS and parts[-1] in long_tags        # trigger first, whole tags only
        n = count(cap)
        assert n <= MAX_TOKENS and n > len(tok(cap, add_special_tokens=False).input_ids)  # 8 vectors > 4 ids
        following = long_tags[long_tags.index(parts[-1]) + 1]
        assert count(f"{cap}, {following}") > MAX_TOKENS  # the longest run of tags that fits
        # One 75-token chunk: A1111 does not split it and the diffusers layout does not cut it, so the
        # A1111 and diffusers adapters encode the same text.
        rows, splices = layout(tok, [cap], vectors)
        assert rows[0][n + 1] == tok.eos_token_id and len(splices) == 1
