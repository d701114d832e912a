"""Every training option in one validated object (label, range and help declared with each field), and the presets."""
from __future__ import annotations

import re
from typing import Literal

from ..options import Options, OptionsError, option, validator
from ..shots import SHOTS

ConfigError = OptionsError   # the name the training code and its callers use

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"COM{i}" for i in range(10)} | {f"LPT{i}" for i in range(10)}

# Presets set the knobs that trade memory and time for quality; anything the user sets wins over the preset.
PRESETS = {
    "low-vram": dict(resolution=512, batch_size=1, rank=4, alpha=4.0, vectors_per_token=1, max_steps=800,
                     gradient_checkpointing=True, optimizer="adamw8bit", train_text_encoder=False),
    "balanced": dict(resolution=512, batch_size=2, rank=8, alpha=8.0, vectors_per_token=2, max_steps=1500,
                     gradient_checkpointing=False, optimizer="adamw", train_text_encoder=False),
    "quality": dict(resolution=512, batch_size=4, rank=16, alpha=8.0, vectors_per_token=4, max_steps=3000,
                    gradient_checkpointing=False, optimizer="adamw", train_text_encoder=True,
                    lr_scheduler="cosine", lr_warmup_steps=100),
}


class TrainConfig(Options):
    _what = "training option"

    name: str = option("storyboard", "Model name", "LoRA file stem and training-state folder.")
    data_dir: str = option("", "Dataset folder", "A folder of sketches with .txt tag files.")
    preset: Literal["low-vram", "balanced", "quality"] = option("balanced", "Preset")
    resolution: int = option(512, "Resolution", ge=64, le=2048, step=64, multiple_of=8)
    bucketing: bool = option(True, "Aspect-ratio bucketing")
    bucket_step: int = option(64, "Bucket step (pixels)", ge=8, le=512, step=8, multiple_of=8)
    max_bucket_ratio: float = option(2.0, "Largest bucket aspect ratio", ge=1.0, le=4.0, step=0.1)
    batch_size: int = option(1, "Batch size", ge=1, le=256)
    max_steps: int = option(1000, "Steps", ge=1, le=1_000_000, widget="number")
    seed: int = option(1234, "Seed", widget="number")
    # tokens (pivotal tuning)
    vectors_per_token: int = option(2, "Vectors per token", ge=1, le=16)
    init_words: dict = option({s.stem: s.init_words for s in SHOTS}, "Initial words of each token")
    ti_lr: float = option(5e-3, "Token learning rate", ge=0.0, le=1.0, widget="number")
    ti_frac: float = option(0.5, "Token phase (fraction of the run)", "The tokens train for this fraction of the "
                            "run, then only the LoRA (pivotal tuning).", ge=0.0, le=1.0, step=0.05)
    # LoRA
    rank: int = option(8, "LoRA rank", ge=1, le=256)
    alpha: float = option(8.0, "LoRA alpha", ge=0.0)
    lora_dropout: float = option(0.0, "LoRA dropout", ge=0.0, le=1.0, step=0.05)
    unet_lr: float = option(1e-4, "LoRA learning rate", ge=0.0, le=1.0, widget="number")
    train_text_encoder: bool = option(False, "Text-encoder LoRA")
    text_encoder_lr: float = option(5e-5, "Text-encoder learning rate", ge=0.0, le=1.0, widget="number")
    weight_decay: float = option(1e-2, "Weight decay", ge=0.0)
    optimizer: Literal["adamw", "adamw8bit"] = option(
        "adamw", "Optimizer", "adamw8bit needs bitsandbytes on a CUDA GPU, else AdamW runs and a warning says so.")
    lr_scheduler: Literal["constant", "cosine"] = option("constant", "Learning-rate schedule")
    lr_warmup_steps: int = option(0, "Warm-up steps", ge=0, le=1_000_000, widget="number")
    max_grad_norm: float = option(1.0, "Gradient clipping norm (0 = off)", ge=0.0)
    # loss
    min_snr_gamma: float = option(5.0, "Min-SNR γ (0 = off)", ge=0.0)
    noise_offset: float = option(0.0, "Noise offset", ge=0.0)
    # Framing is decided at the noisy end of sampling, so shot tokens learn faster when the low-noise steps are left
    # out (kohya's min/max timestep options).
    min_timestep: int = option(0, "Min timestep (higher: learn composition, not detail)", ge=0, le=999)
    max_timestep: int = option(999, "Max timestep", ge=0, le=999)
    # prior preservation (DreamBooth): class images the checkpoint draws itself, without a trigger (training/prior.py)
    prior_loss_weight: float = option(
        0.0, "Prior-preservation weight (0 = off)", "Each step also denoises class images the checkpoint drew from "
        "the class prompt, with this weight, so prompts without a trigger stay closer to the checkpoint's own.",
        ge=0.0, le=10.0, step=0.05)
    class_images: int = option(50, "Class images per shot", "Drawn once per checkpoint and prompt, then reused.",
                               ge=1, le=10_000, widget="number")
    class_prompt: str = option("{shot}", "Class prompt", "What the class images are drawn from; {shot} becomes "
                               "close-up, medium shot or full shot. No trigger.")
    class_steps: int = option(20, "Class-image sampling steps", ge=1, le=150)
    class_cfg: float = option(7.0, "Class-image CFG scale", ge=0.0, le=30.0, step=0.5)
    # captions
    shuffle_tags: bool = option(True, "Shuffle tags (trigger stays first)")
    keep_tags: int = option(0, "Tags kept in place after the trigger", ge=0, le=100)
    tag_dropout: float = option(0.0, "Tag dropout", ge=0.0, le=1.0, step=0.05)
    caption_dropout: float = option(0.05, "Caption dropout", ge=0.0, le=1.0, step=0.05)
    clip_skip: int = option(1, "Clip skip", ge=1, le=12)
    # speed / memory
    gradient_checkpointing: bool = option(False, "Gradient checkpointing (less memory, slower)")
    precision: Literal["auto", "fp32", "fp16", "bf16"] = option(
        "auto", "Precision", "auto follows the checkpoint's weights; CPU trains in fp32 (see training/precision.py).")
    # outputs and previews
    save_every: int = option(0, "Save every N steps (0 = at the end)", ge=0, le=1_000_000, widget="number")
    preview_every: int = option(0, "Preview every N steps (0 = off)", ge=0, le=1_000_000, widget="number")
    preview_prompt: str = option("a sketch of a person standing", "Preview prompt (after the trigger)")
    preview_seeds: tuple[int, ...] = option((1, 2), "Preview seeds")
    preview_steps: int = option(20, "Preview sampling steps", ge=1, le=150)
    preview_cfg: float = option(7.0, "Preview CFG scale", ge=0.0, le=30.0, step=0.5)
    description: str = option("", "Description (shown on the Lora card)")
    resume: bool = option(False, "Resume the saved run of this name")

    @validator("name")
    def _file_name(cls, v: str) -> str:
        if not SAFE_NAME.fullmatch(v) or v.upper() in _WINDOWS_RESERVED:
            raise ValueError("The model name must be 1-64 letters, digits, '-', '_' or '.', start with a letter or "
                             "digit, and be a valid file name.")
        return v

    @validator("bucket_step", always=True)   # always: a resolution sent alone must fit the default step too
    def _bucket_step(cls, v: int, values: dict) -> int:
        if values.get("resolution") and values["resolution"] % v:
            raise ValueError(f"The resolution ({values['resolution']}) must be a multiple of the bucket step ({v}).")
        return v

    @validator("max_timestep")
    def _timestep_order(cls, v: int, values: dict) -> int:
        if values.get("min_timestep", 0) > v:
            raise ValueError("Timesteps must satisfy 0 <= min_timestep <= max_timestep <= 999.")
        return v

    @validator("init_words")
    def _init_words(cls, v: dict) -> dict:
        stems = {s.stem for s in SHOTS}
        if set(v) - stems or not all(isinstance(w, str) and w.strip() for w in v.values()):
            raise ValueError("must map cu_trg, ms_trg and fs_trg to non-empty words")
        return {**{s.stem: s.init_words for s in SHOTS}, **v}

    @validator("class_prompt")
    def _class_prompt(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        found = [s.trigger for s in SHOTS if s.stem in v]
        if found:
            raise ValueError(f"must not contain a shot trigger ({found[0]}): class images show what the checkpoint "
                             "draws without one.")
        return v

    @validator("preview_seeds")
    def _seeds(cls, v: tuple) -> tuple:
        if not v:
            raise ValueError("must be a non-empty list of integers")
        return v

    @classmethod
    def from_dict(cls, data) -> TrainConfig:
        """JSON-like input → a config; the preset's values come first, anything the caller set wins."""
        if isinstance(data, dict):
            preset = data.get("preset", cls.__fields__["preset"].default)
            data = {**PRESETS.get(preset, {}), **data}
        cfg = super().from_dict(data)
        return cfg

    def to_dict(self) -> dict:
        d = self.dict()
        d["preview_seeds"] = list(self.preview_seeds)
        return d

    def replace(self, **changes) -> TrainConfig:
        """A validated copy with some options changed."""
        return type(self).from_dict({**self.to_dict(), **changes})
