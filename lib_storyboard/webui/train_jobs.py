"""Training jobs in the host: one at a time, on the loaded checkpoint, under the host's queue lock and progress
state; the tab and the HTTP API share one job list."""
from modules import shared

from ..formats.atomic import atomic_path
from ..jobs import Job, JobManager, manager_for
from ..training.config import ConfigError, TrainConfig
from ..training.preflight import request_problems
from ..training.trainer import Trainer
from . import patches
from .host_lock import run_locked
from .model_adapter import A1111Adapter
from .paths import output_paths, preview_path


def validate_request(options) -> TrainConfig:
    """Training options from the tab or the API → a config, or ConfigError naming each bad field."""
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
    """Train on the loaded model, holding the host's queue lock and progress state (host_lock.run_locked)."""
    run_locked(job, take_lock, "storyboard-train", lambda: _train(job, job.options))


def _train(job: Job, cfg: TrainConfig) -> None:
    state = shared.state
    state.job_count = cfg.max_steps
    state.job_no = 0
    state.textinfo = "Preparing storyboard training"
    job.total = cfg.max_steps
    adapter = A1111Adapter(clip_skip=cfg.clip_skip)
    preview = preview_path(cfg.name)

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
            with atomic_path(preview) as tmp:
                e.image.save(tmp, format="PNG")
            job.preview = preview
        elif e.kind in ("saved", "done"):
            job.files = list(e.files)
            if e.files:
                adapter.after_save()

    def should_stop():
        return bool(state.interrupted) or job.stop.is_set()

    trainer = Trainer(adapter, cfg, output_paths(), on_event=on_event, should_stop=should_stop)
    try:
        result = trainer.run()
    finally:
        patches.reset_condition_caches()
        job.report = dict(trainer.report)   # a failed run keeps its dataset report: what was skipped, and why
    job.report = result.report
    job.files = result.files
    job.state = result.status


def manager() -> JobManager:
    return manager_for("train", lambda job: run_job(job, take_lock=True))


def interrupt_active() -> bool:
    """Stop the running training job, if any; returns whether one was running."""
    job = manager().active()
    if job is None:
        return False
    job.stop.set()
    shared.state.interrupt()
    return True
