"""Every training option in one validated object, the presets, and the checks that turn bad values into sentences."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from ..shots import SHOTS


class ConfigError(ValueError):
    """Bad training options; `errors` maps each field to one sentence."""

    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        super().__init__(" ".join(self.errors.values()))


@dataclass
class TrainConfig:
    name: str = "storyboard"                 # output name: LoRA file stem, state folder
    data_dir: str = ""
    preset: str = "balanced"
    resolution: int = 512
    bucketing: bool = True
    bucket_step: int = 64
    max_bucket_ratio: float = 2.0
    batch_size: int = 1
    max_steps: int = 1000
    seed: int = 1234
    # tokens (pivotal tuning)
    vectors_per_token: int = 2
    init_words: dict = field(default_factory=lambda: {s.stem: s.init_words for s in SHOTS})
    ti_lr: float = 5e-3
    ti_frac: float = 0.5                     # the embedding phase ends at this fraction of the run
    # LoRA
    rank: int = 8
    alpha: float = 8.0
    lora_dropout: float = 0.0
    unet_lr: float = 1e-4
    train_text_encoder: bool = False
    text_encoder_lr: float = 5e-5
    weight_decay: float = 1e-2
    optimizer: str = "adamw"                 # adamw | adamw8bit (needs bitsandbytes + CUDA, else adamw and a warning)
    lr_scheduler: str = "constant"           # constant | cosine
    lr_warmup_steps: int = 0
    max_grad_norm: float = 1.0
    # loss
    min_snr_gamma: float = 5.0               # 0 turns min-SNR weighting off
    noise_offset: float = 0.0
    # Training timesteps are drawn from [min_timestep, max_timestep] (kohya's options). Framing is decided at the
    # noisy end of sampling, so shot tokens learn faster when the low-noise steps are left out.
    min_timestep: int = 0
    max_timestep: int = 999
    # captions
    shuffle_tags: bool = True
    keep_tags: int = 0
    tag_dropout: float = 0.0
    caption_dropout: float = 0.05
    clip_skip: int = 1
    # speed / memory
    gradient_checkpointing: bool = False
    precision: str = "auto"                  # auto | fp32 | fp16 | bf16; CPU trains in fp32 (see precision.py)
    # outputs and previews
    save_every: int = 0                      # 0: only at the end (and on interrupt)
    preview_every: int = 0                   # 0: no previews during training
    preview_prompt: str = "a sketch of a person standing"
    preview_seeds: tuple = (1, 2)
    preview_steps: int = 20
    preview_cfg: float = 7.0
    description: str = ""
    resume: bool = False

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["preview_seeds"] = list(self.preview_seeds)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """Build from JSON-like input; unknown keys and bad values raise ConfigError naming each field."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        errors = {k: f"'{k}' is not a training option." for k in data if k not in known}
        base = cls()
        preset = data.get("preset", base.preset)
        if preset in PRESETS:
            for k, v in PRESETS[preset].items():
                setattr(base, k, v)
        values = {}
        for k, v in data.items():
            if k not in known:
                continue
            default = getattr(base, k)
            try:
                values[k] = _coerce(v, default)
            except (TypeError, ValueError):
                errors[k] = f"'{k}' must be {_kind(default)}, not {v!r}."
        cfg = dataclasses.replace(base, **values)
        try:
            cfg.validate()
        except ConfigError as e:   # report every bad field at once, not the first kind found
            errors = {**e.errors, **errors}
        if errors:
            raise ConfigError(errors)
        return cfg

    def validate(self) -> None:
        e = {}
        if not SAFE_NAME.fullmatch(self.name or "") or self.name.upper() in _WINDOWS_RESERVED:
            e["name"] = ("The model name must be 1-64 letters, digits, '-', '_' or '.', start with a letter or digit, "
                         "and be a valid file name.")
        if self.preset not in PRESETS:
            e["preset"] = f"Unknown preset '{self.preset}'; choose one of {', '.join(PRESETS)}."
        if not 64 <= self.resolution <= 2048 or self.resolution % 8:
            e["resolution"] = "The resolution must be a multiple of 8 between 64 and 2048."
        if self.bucket_step < 8 or self.bucket_step % 8:
            e["bucket_step"] = "The bucket step must be a positive multiple of 8."
        elif self.resolution % self.bucket_step:
            e["bucket_step"] = f"The resolution ({self.resolution}) must be a multiple of the bucket step."
        if not 1.0 <= self.max_bucket_ratio <= 4.0:
            e["max_bucket_ratio"] = "The bucket aspect ratio limit must be between 1 and 4."
        for k, lo, hi in (("batch_size", 1, 256), ("max_steps", 1, 1_000_000), ("vectors_per_token", 1, 16),
                          ("rank", 1, 256), ("clip_skip", 1, 12), ("preview_steps", 1, 150),
                          ("keep_tags", 0, 100), ("lr_warmup_steps", 0, 1_000_000)):
            if not lo <= getattr(self, k) <= hi:
                e[k] = f"'{k}' must be between {lo} and {hi}."
        for k in ("save_every", "preview_every"):
            if getattr(self, k) < 0:
                e[k] = f"'{k}' must be 0 (off) or a positive number of steps."
        for k in ("ti_frac", "lora_dropout", "tag_dropout", "caption_dropout"):
            if not 0.0 <= getattr(self, k) <= 1.0:
                e[k] = f"'{k}' must be between 0 and 1."
        for k in ("ti_lr", "unet_lr", "text_encoder_lr", "weight_decay", "min_snr_gamma", "noise_offset",
                  "max_grad_norm", "alpha", "preview_cfg"):
            if getattr(self, k) < 0:
                e[k] = f"'{k}' must not be negative."
        if not 0 <= self.min_timestep <= self.max_timestep <= 999:
            e["min_timestep"] = "Timesteps must satisfy 0 <= min_timestep <= max_timestep <= 999."
        if self.optimizer not in ("adamw", "adamw8bit"):
            e["optimizer"] = "The optimizer must be 'adamw' or 'adamw8bit'."
        if self.lr_scheduler not in ("constant", "cosine"):
            e["lr_scheduler"] = "The learning-rate schedule must be 'constant' or 'cosine'."
        if self.precision not in ("auto", "fp32", "fp16", "bf16"):
            e["precision"] = "The precision must be 'auto', 'fp32', 'fp16' or 'bf16'."
        if not isinstance(self.init_words, dict) or set(self.init_words) - {s.stem for s in SHOTS} or \
                not all(isinstance(v, str) and v.strip() for v in self.init_words.values()):
            e["init_words"] = "init_words maps cu_trg/ms_trg/fs_trg to non-empty words."
        if not self.preview_seeds or not all(isinstance(s, int) for s in self.preview_seeds):
            e["preview_seeds"] = "preview_seeds must be a non-empty list of integers."
        if e:
            raise ConfigError(e)


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


def _kind(default) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "text", dict: "an object",
            tuple: "a list"}.get(type(default), type(default).__name__)


def _coerce(v, default):
    if isinstance(default, bool):
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v.lower() in ("true", "false"):
            return v.lower() == "true"
        raise ValueError(v)
    if isinstance(default, int):
        if isinstance(v, bool):
            raise ValueError(v)
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, (int, str)):
            return int(v)
        raise ValueError(v)
    if isinstance(default, float):
        if isinstance(v, bool):
            raise ValueError(v)
        return float(v)
    if isinstance(default, str):
        if not isinstance(v, str):
            raise ValueError(v)
        return v
    if isinstance(default, tuple):
        if not isinstance(v, (list, tuple)):
            raise ValueError(v)
        return tuple(int(x) for x in v)
    if isinstance(default, dict):
        if not isinstance(v, dict):
            raise ValueError(v)
        return {**default, **v}
    return v
