"""The pivotal-tuning loop: three shot-token embeddings trained jointly with a style LoRA.

The loop knows nothing of its host: it talks to a ModelAdapter (A1111's loaded model, or diffusers), reports through
`on_event`, and stops when `should_stop()` says so, saving what was learned.
"""
from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass, field
from collections.abc import Callable

import torch

from .. import shots
from ..dataset.captions import build_caption, token_counter
from ..dataset.latents import LatentCache, cache_latents
from ..dataset.scan import scan_folder
from ..formats.atomic import atomic_group
from .adapter import ModelAdapter
from .config import TrainConfig
from .data_parallel import DataParallel
from .lora import LoraSet
from .outputs import OutputPaths, write_outputs
from .precision import decide_precision
from .preview import grid, sample
from .prior import (PriorData, cache_folder, cached_class_images, class_prompt, ensure_class_images,
                    model_identity)
from .state import StateError, load_state, save_state, saved_config

# Settings a resumed run must share with the saved one, or the saved tensors and moments would not fit.
RESUME_KEYS = ("name", "vectors_per_token", "rank", "alpha", "train_text_encoder", "seed", "batch_size",
               "resolution", "bucketing", "bucket_step", "max_bucket_ratio", "clip_skip")


def check_resume(state_dir: str, cfg: TrainConfig) -> None:
    """What resuming `cfg.name` needs that is known before any image is read: a saved state, written with the same
    settings. Raises StateError (the run checks again, and also that the images are the same)."""
    _same_settings(saved_config(os.path.join(state_dir, cfg.name)), cfg)


def _same_settings(saved: dict, cfg: TrainConfig) -> None:
    diff = [k for k in RESUME_KEYS if saved.get(k) != cfg.to_dict().get(k)]
    if diff:
        raise StateError(f"The saved run used other settings for {', '.join(diff)}; resume with the same "
                         "settings or start a new run.")


class SaveError(OSError):
    """The files of a run could not be written; the message is one sentence and nothing on disk changed."""


@dataclass
class Event:
    kind: str                    # status | step | preview | saved | done
    step: int = 0
    total: int = 0
    loss: float | None = None
    message: str = ""
    files: list = field(default_factory=list)
    image: object = None         # PIL image for previews


@dataclass
class TrainResult:
    status: str                  # finished | interrupted
    step: int
    files: list
    report: dict
    loss: float | None
    vae_encodes: int


@dataclass
class Run:
    """Everything one training run changes as it goes: the trainable tensors, the optimizer, the random streams and
    where it is in the data. `_save` writes it and `_restore` reads it back, so a resumed run continues exactly."""
    tokens: dict[str, torch.nn.Parameter]
    lora: LoraSet
    optimizer: torch.optim.Optimizer
    base_lrs: list[float]
    scaler: torch.cuda.amp.GradScaler | None
    gen: torch.Generator             # latent sampling, noise and timesteps
    cap_rng: random.Random           # caption shuffling and dropout
    started: float
    step: int = 0
    epoch: int = 0
    pos: int = 0                     # next batch within the epoch
    first_step: int = 0              # where this run started (a resumed run starts at the saved step)
    loss_ema: float | None = None


class Trainer:
    def __init__(self, adapter: ModelAdapter, cfg: TrainConfig, paths: OutputPaths,
                 on_event: Callable[[Event], None] | None = None, should_stop: Callable[[], bool] | None = None,
                 parallel: DataParallel | None = None):
        self.ad, self.cfg, self.paths = adapter, cfg, paths
        self.parallel = parallel
        self.main = parallel is None or parallel.main    # the one process that reports and writes files
        self.on_event = on_event or (lambda e: None)
        self.should_stop = should_stop or (lambda: False)
        self.report: dict = {}
        self.data: LatentCache | None = None
        self.prior: PriorData | None = None     # class images, when prior preservation is on
        self.card_preview = None

    @property
    def vae_encodes(self) -> int:
        return self.data.encodes if self.data else 0

    def _emit(self, kind, **kw):
        if not self.main:
            return
        self.on_event(Event(kind, total=self.cfg.max_steps, **kw))

    # -- the run, top to bottom --------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        cfg, ad = self.cfg, self.ad
        ad.check_trainable()
        dev = ad.device
        self.precision = decide_precision(cfg.precision, dev.type,
                                          dev.type == "cuda" and torch.cuda.is_bf16_supported(), ad.weight_dtype)
        started = time.time()
        self.prepare_data()
        if self.data.stopped:
            return self._nothing_learned("interrupted", 0, "Interrupted while caching latents")
        run = self._new_run(started)
        if cfg.resume:
            self._restore(run)
        status = self._train(run)
        if run.step == run.first_step:
            why = ("Interrupted before the first training step" if status == "interrupted"
                   else f"Already at step {run.step} of {cfg.max_steps}")
            return self._nothing_learned(status, run.step, why)
        files = self._save(run)
        self._emit("done", step=run.step, loss=run.loss_ema, files=files,
                   message=("Interrupted" if status == "interrupted" else "Finished") + f" at step {run.step}")
        return TrainResult(status, run.step, files, self.report, run.loss_ema, self.vae_encodes)

    def prepare_data(self) -> dict:
        """Scan the dataset folder and cache every usable image's latents (one VAE encode per image per run)."""
        cfg = self.cfg
        scan = scan_folder(cfg.data_dir, min_side=max(32, cfg.resolution // 8))
        self.report = scan.as_dict()
        scan.require_items()
        self._emit("status", message=f"Caching latents of {len(scan.items)} images")
        self.data = cache_latents(self.ad.encode_images, scan, cfg.resolution, cfg.bucketing, cfg.bucket_step,
                                  cfg.max_bucket_ratio, self.should_stop)
        if self.data.skipped:
            self.report.setdefault("skipped", []).extend(self.data.skipped)
        self.batcher = self.data.batcher(cfg.batch_size, cfg.seed)
        self.report["used"] = len(self.data.items)
        self.report["buckets"] = self.data.buckets_used()
        # The one place captions are capped, before any adapter encodes them: past one 75-token chunk A1111 would
        # split the text and diffusers cut it, so the two would train on different conditioning.
        self.count_tokens = token_counter(self.ad.tokenizer, {s.stem: cfg.vectors_per_token for s in shots.SHOTS})
        return self.report

    def _new_run(self, started: float) -> Run:
        cfg, ad, dev = self.cfg, self.ad, self.ad.device
        tokens = {s.stem: torch.nn.Parameter(ad.token_init(cfg.init_words.get(s.stem, s.init_words),
                                                           cfg.vectors_per_token).to(dev))
                  for s in shots.SHOTS}
        lora = LoraSet(ad.lora_targets(cfg.train_text_encoder), cfg.rank, cfg.alpha, cfg.lora_dropout,
                       seed=cfg.seed).to(dev)
        groups = [{"params": list(tokens.values()), "lr": cfg.ti_lr, "weight_decay": 0.0, "name": "tokens"},
                  {"params": lora.group("lora_unet"), "lr": cfg.unet_lr, "weight_decay": cfg.weight_decay,
                   "name": "unet"}]
        te = lora.group("lora_te")
        if te:
            groups.append({"params": te, "lr": cfg.text_encoder_lr, "weight_decay": cfg.weight_decay, "name": "te"})
        optimizer, warning = _make_optimizer(cfg.optimizer, groups, dev)
        if warning:
            self.report.setdefault("warnings", []).append(warning)
            self._emit("status", message=warning)
        run = Run(tokens, lora, optimizer, [g["lr"] for g in optimizer.param_groups],
                  torch.cuda.amp.GradScaler() if self.precision.scaler else None,
                  torch.Generator().manual_seed(cfg.seed), random.Random(cfg.seed), started)
        torch.manual_seed(cfg.seed)
        return run

    def _train(self, run: Run) -> str:
        """Steps until max_steps or a stop; returns "finished" or "interrupted"."""
        cfg = self.cfg
        run.first_step = run.step
        self.ab = self.ad.alphas_cumprod()
        with self.ad.training(cfg.gradient_checkpointing):
            # The base alone draws the class images, so they come before the LoRA is attached.
            if cfg.prior_loss_weight and not self._prepare_prior():
                return "interrupted"
            run.lora.attach()
            try:
                self._emit("status", step=run.step, message="Training")
                batches = self.batcher.batches(run.epoch)
                while run.step < cfg.max_steps:
                    if self.should_stop():
                        return "interrupted"
                    if run.pos >= len(batches):
                        run.epoch, run.pos = run.epoch + 1, 0
                        batches = self.batcher.batches(run.epoch)
                    idx = batches[run.pos]
                    run.pos += 1
                    lv = self._step(run, idx)
                    run.step += 1
                    run.loss_ema = lv if run.loss_ema is None else 0.9 * run.loss_ema + 0.1 * lv
                    self._emit("step", step=run.step, loss=run.loss_ema, message=f"loss {lv:.4f}")
                    last = run.step == cfg.max_steps
                    if cfg.preview_every and (run.step % cfg.preview_every == 0 or last):
                        self._preview(run)
                    if cfg.save_every and run.step % cfg.save_every == 0 and not last:
                        self._save(run)
            finally:
                run.lora.detach()
        return "finished"

    def _step(self, run: Run, idx: list[int]) -> float:
        """One optimizer step on the batch `idx`; returns its loss."""
        cfg, ad, dev, ab, data = self.cfg, self.ad, self.ad.device, self.ab, self.data
        train_tokens = run.step < int(round(cfg.ti_frac * cfg.max_steps))   # pivotal tuning: tokens first
        for p in run.tokens.values():
            p.requires_grad_(train_tokens)
        for g, lr in zip(run.optimizer.param_groups, run.base_lrs):
            g["lr"] = 0.0 if g["name"] == "tokens" and not train_tokens else lr * _lr_factor(cfg, run.step)
        # The whole batch's captions and random draws, in the same order on every process (data_parallel.py);
        # `share` is this process's part of it (all of it in a single process).
        captions = [build_caption(shots.BY_KEY[data.items[i].shot_key].trigger, data.items[i].tags,
                                  shuffle=cfg.shuffle_tags, rng=run.cap_rng, keep_tags=cfg.keep_tags,
                                  tag_dropout=cfg.tag_dropout, caption_dropout=cfg.caption_dropout,
                                  count_tokens=self.count_tokens)
                    for i in idx]
        z, noise, t = self._draw(run, torch.stack([data.means[i] for i in idx]),
                                 torch.stack([data.stds[i] for i in idx]))
        share = self.parallel.share(len(idx)) if self.parallel else slice(None)
        batches = [(captions[share], z[share], noise[share], t[share])]
        if self.prior:   # a class image of the same shot for each instance, drawn after the instance's draws
            c_mean, c_std, c_captions = self.prior.pick([data.items[i].shot_key for i in idx], run.gen)
            batches.append((c_captions[share],) + tuple(v[share] for v in self._draw(run, c_mean, c_std)))
        opt, scaler = run.optimizer, run.scaler
        losses, seen = [], {}
        for caps, z, noise, t in batches:
            if not caps:    # a batch shorter than the number of processes leaves some of them nothing
                continue
            z, noise, t = z.to(dev), noise.to(dev), t.to(dev)
            a = ab[t].view(-1, 1, 1, 1)
            x_t = a.sqrt() * z + (1 - a).sqrt() * noise
            with ad.autocast(self.precision.autocast):
                cond = ad.encode_text(caps, dict(run.tokens))
                pred = ad.predict(x_t, t, cond)
            target = noise if ad.parameterization == "eps" else a.sqrt() * noise - (1 - a).sqrt() * z
            mse = ((pred.float() - target.float()) ** 2).mean(dim=(1, 2, 3))
            losses.append(mse * _snr_weight(ab[t], cfg.min_snr_gamma, ad.parameterization))
            seen = seen or {"x_t": x_t, "text": cond, "prediction": pred}
        if self.parallel is None:
            loss = losses[0].mean()
            if self.prior:
                loss = loss + cfg.prior_loss_weight * losses[1].mean()
            _check_finite(loss, run.step, **seen)
            (scaler.scale(loss) if scaler else loss).backward()
        else:
            # A share's sum over the global batch length: summed over the processes, the one-process mean.
            weights = (1.0, cfg.prior_loss_weight)
            loss = (sum(w * l.sum() for w, l in zip(weights, losses)) / len(idx) if losses
                    else torch.zeros((), device=dev))
            if losses:
                (scaler.scale(loss) if scaler else loss).backward()
            # Summed before unscaling, so every process sees the same gradients and takes the same step.
            loss = self.parallel.sum_gradients([p for g in opt.param_groups for p in g["params"]], loss)
            _check_finite(loss, run.step, **seen)
        if scaler:
            scaler.unscale_(opt)
        bad = [g["name"] for g in opt.param_groups for p in g["params"]
               if p.grad is not None and not torch.isfinite(p.grad).all()]
        if bad and not scaler:
            raise FloatingPointError(f"Non-finite gradients in {sorted(set(bad))} at step {run.step + 1}.")
        params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
        if cfg.max_grad_norm > 0 and params:
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    def _prepare_prior(self) -> bool:
        """Class images of each shot in the dataset, from the cache or drawn now, encoded; False if stopped."""
        cfg, ad = self.cfg, self.ad
        root = os.path.join(self.paths.state_dir, "class_images")
        identity = model_identity(ad)
        self.prior = PriorData()
        drawn = 0
        for s in [s for s in shots.SHOTS if any(it.shot_key == s.key for it in self.data.items)]:
            prompt = class_prompt(cfg.class_prompt, s)
            folder = cache_folder(root, identity, prompt, cfg.resolution, cfg.class_steps, cfg.class_cfg,
                                  cfg.clip_skip)
            self._emit("status", message=f"Class images for prior preservation: {prompt!r}")
            paths, n = [], 0
            if self.main:   # one process draws and writes; the others read them after the barrier
                paths, n = ensure_class_images(ad, folder, prompt, cfg.class_images, cfg.resolution, cfg.class_steps,
                                               cfg.class_cfg, cfg.batch_size, self.precision.autocast,
                                               self.should_stop)
            if self.parallel:
                self.parallel.barrier()
                paths = cached_class_images(folder, cfg.class_images)
            drawn += n
            if len(paths) < cfg.class_images:
                return False
            self.prior.add(s.key, prompt, paths, ad.encode_images)
        total = cfg.class_images * len(self.prior.prompts)
        self.report["class_images"] = {"per_shot": cfg.class_images, "drawn": drawn, "reused": total - drawn,
                                       "folder": root}
        self._emit("status", message=f"Prior preservation: {total} class images ({drawn} drawn now, "
                                     f"{total - drawn} from the cache)")
        return True

    def _draw(self, run: Run, mean: torch.Tensor, std: torch.Tensor):
        """Latents sampled from their cached distributions, noise and timesteps for a batch (on the CPU), drawn
        from the run's generator in a fixed order."""
        cfg, T = self.cfg, self.ab.shape[0]
        z = mean + std * torch.randn(mean.shape, generator=run.gen)
        noise = torch.randn(mean.shape, generator=run.gen)
        if cfg.noise_offset:
            noise = noise + cfg.noise_offset * torch.randn((mean.shape[0], mean.shape[1], 1, 1), generator=run.gen)
        t = torch.randint(min(cfg.min_timestep, T - 1), min(cfg.max_timestep, T - 1) + 1, (mean.shape[0],),
                          generator=run.gen)
        return z, noise, t

    def _nothing_learned(self, status: str, step: int, why: str) -> TrainResult:
        """A run that took no optimizer step writes nothing: what this name has on disk (files, the state a later
        Resume continues from) stays exactly as it was."""
        msg = (f"{why}: nothing was learned, so no file was written (this model's saved files and training state, "
               "if any, are unchanged).")
        self._emit("done", step=step, message=msg)
        return TrainResult(status, step, [], self.report, None, self.vae_encodes)

    # -- save, resume, previews ---------------------------------------------------------------------------------
    def _state_dir(self) -> str:
        return os.path.join(self.paths.state_dir, self.cfg.name)

    def _save(self, run: Run) -> list[str]:
        if not self.main:    # the other processes hold the same tensors (data_parallel.py)
            return []
        cfg = self.cfg
        vecs = {k: v.detach().float().cpu() for k, v in run.tokens.items()}
        weights = run.lora.weights()
        rng = {"gen": run.gen.get_state(), "torch": torch.get_rng_state(), "caption": list(run.cap_rng.getstate())}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state()
        # One set: the LoRA, embeddings, card and state replace the previous ones together or, if any write fails
        # (a full disk), none of them does and no temporary or new folder is left.
        try:
            with atomic_group():
                files = write_outputs(self.paths, cfg, vecs, weights, step=run.step, started=run.started,
                                      tag_frequency=self._tag_frequency(), num_images=len(self.data.items),
                                      model_name=self.ad.model_name, model_hash=self.ad.model_hash,
                                      preview=self.card_preview)
                files += save_state(self._state_dir(), config=cfg.to_dict(), step=run.step, tokens=vecs,
                                    lora=weights, optimizer=run.optimizer, rng=rng,
                                    extra={"epoch": run.epoch, "pos": run.pos, "data": self.data.signature()})
        except OSError as e:
            raise SaveError(f"Model '{cfg.name}' could not be saved at step {run.step} "
                            f"({e.strerror or type(e).__name__}): no file was written or changed, so its earlier "
                            f"files and training state, if any, are as they were.") from e
        self._emit("saved", step=run.step, files=files, message=f"Saved at step {run.step}")
        return files

    def _restore(self, run: Run) -> None:
        st = load_state(self._state_dir())
        saved = st["meta"]["config"]
        _same_settings(saved, self.cfg)
        if st["meta"].get("tensor_step") != st["step"]:
            raise StateError("The saved training state is incomplete; start a new run.")
        if st["meta"].get("data") != self.data.signature():
            raise StateError("The dataset changed since the saved run; resume needs the same images.")
        with torch.no_grad():
            for stem, p in run.tokens.items():
                p.copy_(st["tokens"][stem].to(p.device))
        run.lora.load_weights(st["lora"])
        run.optimizer.load_state_dict(st["optimizer"])
        rng = st["rng"]
        run.gen.set_state(rng["gen"])
        torch.set_rng_state(rng["torch"])
        if torch.cuda.is_available() and "cuda" in rng:
            torch.cuda.set_rng_state(rng["cuda"])
        v, internal, gauss = rng["caption"]
        run.cap_rng.setstate((v, tuple(internal), gauss))
        run.step, run.epoch, run.pos = st["step"], st["meta"]["epoch"], st["meta"]["pos"]
        self._emit("status", step=run.step, message=f"Resumed at step {run.step}")

    def _tag_frequency(self) -> dict:
        freq: dict[str, int] = {}
        for it in self.data.items:
            for t in [shots.BY_KEY[it.shot_key].trigger] + list(it.tags):
                freq[t] = freq.get(t, 0) + 1
        return freq

    def _preview(self, run: Run) -> None:
        if not self.main:
            return
        cfg = self.cfg
        prompts, seeds = [], []
        for seed in cfg.preview_seeds:
            for s in shots.SHOTS:
                prompts.append(f"{s.trigger}, {cfg.preview_prompt}")
                seeds.append(seed)
        size = (cfg.resolution, cfg.resolution)
        imgs = sample(self.ad, prompts, {k: v.detach() for k, v in run.tokens.items()}, seeds, size,
                      steps=cfg.preview_steps, cfg=cfg.preview_cfg, autocast_dtype=self.precision.autocast)
        self.last_preview = grid(imgs, cols=len(shots.SHOTS), labels=[s.trigger for s in shots.SHOTS])
        # The Lora card crops to a portrait tile, so it gets one panel: what its activation text <ms_trg> draws.
        self.card_preview = imgs[[s.key for s in shots.SHOTS].index("ms")]
        self._emit("preview", step=run.step, image=self.last_preview, message=f"Preview at step {run.step}")


ADAMW8BIT_MISSING = ("8-bit AdamW needs bitsandbytes on a CUDA GPU, which is not available here, so 32-bit AdamW "
                     "is used (more memory).")


def _make_optimizer(kind: str, groups, device):
    """(optimizer, warning sentence or None)."""
    warning = None
    if kind == "adamw8bit":
        if device.type == "cuda":
            try:
                import bitsandbytes as bnb
                return bnb.optim.AdamW8bit(groups), None
            except Exception:   # not installed, or a build without CUDA support
                pass
        warning = ADAMW8BIT_MISSING   # plain AdamW is the same algorithm with 32-bit moments
    # foreach: one multi-tensor update for the many small LoRA tensors (torch picks it by default on CUDA only).
    return torch.optim.AdamW(groups, foreach=True), warning


def _check_finite(loss: torch.Tensor, step: int, **tensors) -> None:
    if not torch.isfinite(loss):
        names = {"x_t": "latents", "text": "text", "prediction": "prediction"}
        where = [names[k] for k, v in tensors.items() if not torch.isfinite(v).all()]
        raise FloatingPointError(f"The loss became {loss.item()} at step {step + 1} (non-finite "
                                 f"{', '.join(where) or 'loss'}); lower the learning rates or use fp32.")


def _lr_factor(cfg: TrainConfig, step: int) -> float:
    if cfg.lr_warmup_steps and step < cfg.lr_warmup_steps:
        return (step + 1) / cfg.lr_warmup_steps
    if cfg.lr_scheduler == "cosine":
        span = max(1, cfg.max_steps - cfg.lr_warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - cfg.lr_warmup_steps) / span)))
    return 1.0


def _snr_weight(ab_t: torch.Tensor, gamma: float, parameterization: str) -> torch.Tensor:
    """Min-SNR-γ loss weights (Hang et al. 2023); all ones when γ is 0."""
    if not gamma:
        return torch.ones_like(ab_t)
    snr = ab_t / (1 - ab_t)
    clipped = torch.clamp(snr, max=gamma)
    return clipped / (snr + 1) if parameterization == "v" else clipped / snr
