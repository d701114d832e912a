"""A1111 glue shared by the tab, the API routes and the trigger script: paths, running a training job under the
host's lock and progress state, and applying a trained model when a prompt contains a shot trigger."""
from __future__ import annotations

import contextlib
import os
import re
import threading
import time

from .. import registry, shots
from ..formats.atomic import atomic_path
from ..jobs import Job, JobManager
from ..training.config import TrainConfig
from ..training.outputs import OutputPaths
from ..training.preflight import request_problems
from ..training.trainer import Trainer
from .a1111 import A1111Adapter, reset_condition_caches

SETTING_DEFAULT = "Settings default"


# -- where things live ------------------------------------------------------------------------------------------
def lora_dir() -> str:
    from modules import paths, shared
    return getattr(shared.cmd_opts, "lora_dir", None) or os.path.join(paths.models_path, "Lora")


def storyboard_dir() -> str:
    from modules import paths, shared
    return getattr(shared.cmd_opts, "storyboard_dir", None) or os.path.join(paths.models_path, "storyboard")


def output_paths() -> OutputPaths:
    from modules import shared
    return OutputPaths(lora_dir=lora_dir(), embeddings_dir=shared.cmd_opts.embeddings_dir,
                       state_dir=os.path.join(storyboard_dir(), "state"))


def list_models():
    return registry.list_models([lora_dir()])


# -- what this WebUI can do -------------------------------------------------------------------------------------
NO_EMBEDDING_DB = ("This WebUI has no textual-inversion database (A1111's sd_hijack.model_hijack.embedding_db; Forge "
                   "keeps embeddings in its text engine), so the storyboard triggers <cu_trg>, <ms_trg> and <fs_trg> "
                   "do nothing here.")


def embedding_db():
    """The host's textual-inversion database, or None where this WebUI has none that we can register vectors in."""
    try:
        from modules import sd_hijack
    except ImportError:
        return None
    db = getattr(getattr(sd_hijack, "model_hijack", None), "embedding_db", None)
    needed = ("register_embedding_by_name", "word_embeddings", "load_textual_inversion_embeddings")
    return db if db is not None and all(hasattr(db, a) for a in needed) else None


def training_unavailable() -> str | None:
    """Why the tab cannot train in this WebUI, in one sentence, or None. Checks what the trainer uses, not names."""
    if embedding_db() is None:
        return ("Training in this WebUI is not possible: it has no textual-inversion database (A1111's "
                "sd_hijack.model_hijack.embedding_db) to train the shot tokens through; use the standalone trainer "
                "(python -m lib_storyboard train) and copy its files into models/Lora.")
    try:
        from modules import call_queue
    except ImportError:
        call_queue = None
    if not hasattr(call_queue, "queue_lock"):
        return "Training in this WebUI is not possible: it has no generation queue lock to train under."
    return None


# -- training ---------------------------------------------------------------------------------------------------
def validate_request(options) -> TrainConfig:
    """Training options from the tab or the API → a config, or ConfigError naming each bad field."""
    from ..training.config import ConfigError

    if not isinstance(options, dict):
        raise ConfigError({"": "The request body must be a JSON object of training options."})
    errors = {}
    try:
        cfg = TrainConfig.from_dict(options)
    except ConfigError as e:
        errors, cfg = dict(e.errors), None
    # The folder, the name's files and resume, checked without decoding an image: a run that cannot start is
    # refused now rather than failing in the queue.
    errors.update(request_problems(options, cfg, output_paths()))
    if errors:
        raise ConfigError(errors)
    return cfg


def run_job(job: Job, take_lock: bool) -> None:
    """Train on the loaded model. The UI's handler already holds the queue lock; API jobs take it here, so no
    generation can swap or patch the model mid-run. While it waits for the lock the job stays queued: a cancel then
    only withdraws it and never interrupts the generation that holds the lock."""
    from modules import call_queue, shared

    cfg = TrainConfig.from_dict(job.config)
    if not take_lock:
        job.begin()
        _train(job, cfg)
        return
    job.message = "Waiting for the WebUI to finish its current work."
    lock = call_queue.queue_lock   # the host's FIFOLock: no timeout, so poll without blocking
    while not lock.acquire(blocking=False):
        if job.stop.is_set():
            return
        time.sleep(0.25)
    try:
        if job.stop.is_set():
            return
        job.begin()
        shared.state.begin(job="storyboard-train")
        try:
            _train(job, cfg)
        finally:
            shared.state.end()
    finally:
        lock.release()


def _train(job: Job, cfg: TrainConfig) -> None:
    from modules import shared

    state = shared.state
    state.job_count = cfg.max_steps
    state.job_no = 0
    state.textinfo = "Preparing storyboard training"
    job.total = cfg.max_steps
    adapter = A1111Adapter(clip_skip=cfg.clip_skip)
    preview_path = os.path.join(storyboard_dir(), "previews", f"{cfg.name}.png")

    def on_event(e):
        job.step, job.message = e.step, e.message or job.message
        if e.loss is not None:
            job.loss = e.loss
        if e.kind == "step":
            state.job_no = e.step
            state.textinfo = f"Storyboard {cfg.name}: step {e.step}/{e.total}, loss {e.loss:.4f}"
        elif e.kind == "status":
            state.textinfo = e.message
        elif e.kind == "preview" and e.image is not None:
            state.assign_current_image(e.image)
            with atomic_path(preview_path) as tmp:
                e.image.save(tmp, format="PNG")
            job.preview = preview_path
        elif e.kind in ("saved", "done"):
            job.files = list(e.files)
            adapter.after_save()

    def should_stop():
        return bool(state.interrupted) or job.stop.is_set()

    trainer = Trainer(adapter, cfg, output_paths(), on_event=on_event, should_stop=should_stop)
    try:
        result = trainer.run()
    finally:
        from modules import processing
        reset_condition_caches(processing)
        job.report = dict(trainer.report)   # a failed run keeps its dataset report: what was skipped, and why
    job.report = result.report
    job.files = result.files
    job.state = result.status


_manager: JobManager | None = None
_manager_lock = threading.Lock()


def manager() -> JobManager:
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = JobManager(lambda job: run_job(job, take_lock=True))
        return _manager


def interrupt_active() -> bool:
    """Stop the running training job, if any; returns whether one was running."""
    from modules import shared
    job = manager().active()
    if job is None:
        return False
    job.stop.set()
    shared.state.interrupt()
    return True


# -- triggers in txt2img / img2img -----------------------------------------------------------------------------
_LORA_TAG = re.compile(r"<lora:([^:>]+)(?::[^>]*)?>", re.IGNORECASE)
_vector_cache: dict = {}


def choose_model(prompts: list[str], choice: str | None):
    """The storyboard model for this generation: the script's choice, else a storyboard LoRA the prompt already
    names, else the setting, else the newest."""
    from modules import shared

    width = _host_vector_width()
    ordered = list_models()          # newest first
    models = {m.name: m for m in ordered}
    if choice and choice != SETTING_DEFAULT:
        if choice not in models:
            return None, f"Storyboard model '{choice}' was not found."
        return _if_fits(models[choice], width)
    for p in prompts:
        for name in _LORA_TAG.findall(p or ""):
            if name in models:
                return _if_fits(models[name], width)
    setting = shared.opts.data.get("storyboard_model", "")
    if setting and setting not in ("Last trained",) and setting in models:
        return _if_fits(models[setting], width)
    # The newest model trained on a checkpoint of this kind: one from a model with other token widths cannot apply.
    newest = next((m for m in ordered if width is None or _vector_width(m) in (width, None)), None)
    if newest is None and ordered:
        return None, (f"No storyboard model fits the loaded checkpoint (its token vectors are {width} wide), "
                      f"so <cu_trg>/<ms_trg>/<fs_trg> do nothing.")
    return newest, (None if newest else "No storyboard model is trained yet, so <cu_trg>/<ms_trg>/<fs_trg> do nothing.")


def _host_vector_width() -> int | None:
    w = getattr(embedding_db(), "expected_shape", -1)
    return w if isinstance(w, int) and w > 0 else None


def _vector_width(model) -> int | None:
    try:
        return int(next(iter(vectors_for(model).values())).shape[-1])
    except (OSError, ValueError, StopIteration):
        return None


def _if_fits(model, width):
    w = _vector_width(model)
    if width and w and w != width:
        return None, (f"Storyboard model '{model.name}' was trained on a checkpoint with {w}-wide token vectors; "
                      f"the loaded one needs {width}, so its triggers do nothing here.")
    return model, None


def vectors_for(model) -> dict:
    """The model's token vectors, read once per file version (the width check looks at several models per
    generation, so one cached entry per file, replaced when the file changes)."""
    mtime = os.path.getmtime(model.path)
    hit = _vector_cache.get(model.path)
    if hit is None or hit[0] != mtime:
        hit = _vector_cache[model.path] = (mtime, registry.token_vectors(model.path))
    return hit[1]


def add_lora_tag(prompt: str, name: str, weight: float) -> str:
    if any(n == name for n in _LORA_TAG.findall(prompt or "")):
        return prompt
    return f"{prompt} <lora:{name}:{weight:g}>"


def apply_triggers(p, choice: str | None) -> None:
    """In `process()`: pick the model, add its style LoRA to the prompts and record it in the infotext."""
    from modules import shared

    prompts = list(p.all_prompts or []) + list(getattr(p, "all_negative_prompts", []) or [])
    if not any(shots.find_triggers(x) for x in prompts):
        return
    model, problem = (None, NO_EMBEDDING_DB) if embedding_db() is None else choose_model(p.all_prompts, choice)
    if model is None:
        if problem:
            if isinstance(getattr(p, "comments", None), dict):
                p.comments[problem] = 1
            print(f"[storyboard] {problem}")
        return
    p._storyboard_vectors = vectors_for(model)
    if shared.opts.data.get("storyboard_apply_lora", True):
        w = float(shared.opts.data.get("storyboard_lora_weight", 1.0))
        p.all_prompts = [add_lora_tag(x, model.name, w) if shots.find_triggers(x) else x for x in p.all_prompts]
        if getattr(p, "all_hr_prompts", None):
            p.all_hr_prompts = [add_lora_tag(x, model.name, w) if shots.find_triggers(x) else x
                                for x in p.all_hr_prompts]
    p.extra_generation_params["Storyboard model"] = model.name


def register_vectors(p) -> None:
    """In `process_batch()` (after the host activated LoRAs, which may unregister bundled names): make cu_trg,
    ms_trg and fs_trg mean this model's vectors for the coming conditioning."""
    vectors = getattr(p, "_storyboard_vectors", None)
    if not vectors:
        return
    from modules import devices, processing, shared
    from modules.textual_inversion.textual_inversion import Embedding

    db = embedding_db()
    for stem, vec in vectors.items():
        emb = Embedding(vec.to(devices.device, devices.dtype), stem)
        emb.vectors, emb.shape = vec.shape[0], vec.shape[-1]
        db.register_embedding_by_name(emb, shared.sd_model, stem)
    reset_condition_caches(processing)


def unregister_vectors(p) -> None:
    if not getattr(p, "_storyboard_vectors", None):
        return
    from modules import shared
    db = embedding_db()
    for stem in shots.STEMS:
        if stem in db.word_embeddings and db.word_embeddings[stem].filename is None:
            db.register_embedding_by_name(None, shared.sd_model, stem)
