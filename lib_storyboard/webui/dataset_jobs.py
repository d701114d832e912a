"""Dataset builds and model validation in the host.

A build is the core's `build_dataset` run under the host's queue lock, with the host's progress bar and Interrupt,
and (when asked) the WebUI's own interrogators adding tags. Validation draws N panels per shot token through the
same txt2img path as boards (`board_jobs.host_drawer`), reads each panel with the shot classifier and writes the
confusion matrix and sheets beside the boards. The chance level is the same prompts and seeds drawn with the
*untrained* tokens (their init words' embeddings) and no LoRA, as the standalone `validate` does.
"""
import os
import time
from dataclasses import dataclass, field

from modules import paths, shared

from ..board.options import BoardOptions
from ..dataset_builder.build import REPORT, SHEET, build_dataset, check_output_folder
from ..dataset_builder.options import DatasetOptions
from ..dataset_builder.sources import list_sources
from ..framing.validate import panel_prompts, validate_model, write_validation
from ..jobs import Job, JobManager, manager_for
from ..options import Options, OptionsError, option
from ..toyworld.proof import untrained_tokens
from . import board_jobs, settings, triggers
from .host_lock import run_locked
from .model_adapter import A1111Adapter
from .paths import public_path

INTERROGATORS = ("none", "deepbooru", "clip")
DATASET_HOST_KEYS = ("interrogate",)
VALIDATE_HOST_KEYS = ("sampler_name", "scheduler")


RequestError = OptionsError   # one sentence per bad field (key "" for the request as a whole)


class Stopped(Exception):
    """Interrupt or cancel during validation: nothing is written."""


@dataclass
class DatasetRequest:
    options: DatasetOptions
    interrogate: str = "none"

    def to_dict(self) -> dict:
        return {**self.options.to_dict(), "interrogate": self.interrogate}


class ValidationOptions(Options):
    _what = "validation option"

    model: str = option("", "Storyboard model", "The trained storyboard model whose shot tokens are checked.",
                        min_length=1, max_length=200)
    prompts: str = option("a person standing in a room", "Prompts", "One panel prompt a line, without a trigger; "
                          "panel i of every token uses the same prompt and seed.", min_length=1, max_length=8000,
                          lines=3)
    per_token: int = option(4, "Panels per token", ge=1, le=64)
    seed: int = option(0, "Seed", "Panel i uses seed + i.", ge=0, le=2**32 - 1, widget="number")
    steps: int = option(20, "Sampling steps", ge=1, le=150)
    cfg: float = option(7.0, "CFG scale", ge=1.0, le=30.0, step=0.5)
    width: int = option(512, "Width", ge=64, le=2048, step=8, multiple_of=8)
    height: int = option(512, "Height", ge=64, le=2048, step=8, multiple_of=8)
    negative: str = option("", "Negative prompt", max_length=2000)
    baseline: bool = option(True, "Chance level", "Also draw the same prompts and seeds with the untrained tokens "
                            "and no LoRA: the framing the checkpoint gives before training.")

    def prompt_list(self) -> list[str]:
        return [p.strip() for p in self.prompts.splitlines() if p.strip()]


@dataclass
class ValidationRequest:
    options: ValidationOptions
    host: dict = field(default_factory=dict)   # sampler_name, scheduler

    def to_dict(self) -> dict:
        return {**self.options.to_dict(), **self.host}


# -- interrogators ------------------------------------------------------------------------------------------------
def _has_file(folder: str, exts: tuple) -> bool:
    return any(n.lower().endswith(exts) for _, _, names in os.walk(folder) for n in names)


def interrogator_missing(kind: str) -> str | None:
    """Why the host's interrogator `kind` cannot run here, in one sentence, or None. Its weights must already be
    on the server: the host would download them mid-build, and writing outside the chosen folder is not ours to do."""
    if kind == "deepbooru" and not _has_file(os.path.join(paths.models_path, "torch_deepdanbooru"), (".pt",)):
        return ("The DeepBooru interrogator's model is not available: its weights are not in "
                "models/torch_deepdanbooru; run Interrogate DeepBooru once in img2img (the WebUI downloads them) "
                "or build without an interrogator.")
    if kind == "clip":
        clip_dir = getattr(shared.cmd_opts, "clip_models_path", None) or os.path.expanduser("~/.cache/clip")
        if not _has_file(os.path.join(paths.models_path, "BLIP"), (".pth",)) or \
                not os.path.isfile(os.path.join(clip_dir, "ViT-L-14.pt")):
            return ("The CLIP interrogator's model is not available: its BLIP and CLIP ViT-L/14 weights are not on "
                    "this server; run Interrogate CLIP once in img2img (the WebUI downloads them) or build without "
                    "an interrogator.")
    return None


def _interrogator(kind: str):
    """(tag(photo) → tags, close()) over the host's own interrogator, loaded now so that a model that cannot load
    fails before anything is written."""
    if kind == "deepbooru":
        from modules import deepbooru
        try:
            deepbooru.model.start()
        except Exception as e:
            raise ValueError(f"The DeepBooru interrogator's model could not be loaded ({type(e).__name__}); "
                             f"nothing was written.") from None

        def tag(photo):
            # ranks off: "(tag:0.9)" is prompt syntax, not a caption tag; the host's escaping is undone likewise
            return deepbooru.model.tag_multi(photo, force_disable_ranks=True).replace("\\", "").split(",")
        return tag, deepbooru.model.stop
    interrogator = shared.interrogator
    try:
        interrogator.load()
    except Exception as e:
        raise ValueError(f"The CLIP interrogator's model could not be loaded ({type(e).__name__}); nothing was "
                         f"written.") from None

    def caption(photo):
        state = shared.state
        kept = (state.job, state.job_count, state.job_no, state.textinfo)
        text = interrogator.interrogate(photo.convert("RGB"))   # begins and ends its own progress state
        state.job, state.job_count, state.job_no, state.textinfo = kept
        if text.endswith("<error>"):   # the host reports the error in its log and returns this marker
            raise ValueError("The CLIP interrogator failed on an image (the WebUI's log has the details); nothing "
                             "was written.")
        return text.split(",")
    return caption, interrogator.unload


# -- requests -----------------------------------------------------------------------------------------------------
def validate_dataset_request(body) -> DatasetRequest:
    """A dataset request from the tab or the API → DatasetRequest, or RequestError naming every problem that can be
    seen before reading a file (source, output folder, options, interrogator)."""
    if not isinstance(body, dict):
        raise RequestError({"": "The request body must be a JSON object of dataset options."})
    unknown = [k for k in body if k not in DATASET_HOST_KEYS and k not in DatasetOptions.__fields__]
    if unknown:
        raise RequestError({k: f"{k!r} is not a dataset field." for k in unknown})
    errors: dict[str, str] = {}
    opts = None
    try:
        opts = DatasetOptions.from_dict({k: v for k, v in body.items() if k not in DATASET_HOST_KEYS})
    except OptionsError as e:
        errors.update(e.errors)
    kind = body.get("interrogate") or "none"
    if kind not in INTERROGATORS:
        errors["interrogate"] = f"interrogate must be one of {', '.join(INTERROGATORS)}, not {kind!r}."
    elif interrogator_missing(kind):
        errors["interrogate"] = interrogator_missing(kind)
    if opts is not None:
        root = None
        try:
            root, _ = list_sources(opts.source)
        except ValueError as e:
            errors["source"] = str(e)
        try:
            inside = root if root and os.path.isdir(os.path.expanduser(opts.source)) else None
            check_output_folder(opts.out, inside)
        except ValueError as e:
            errors["out"] = str(e)
    if errors:
        raise RequestError(errors)
    return DatasetRequest(opts, kind)


def validate_validation_request(body) -> ValidationRequest:
    if not isinstance(body, dict):
        raise RequestError({"": "The request body must be a JSON object of validation options."})
    unknown = [k for k in body if k not in VALIDATE_HOST_KEYS and k not in ValidationOptions.__fields__]
    if unknown:
        raise RequestError({k: f"{k!r} is not a validation field." for k in unknown})
    fields = dict(body)
    if isinstance(fields.get("prompts"), list):   # an API client may send the prompts as a list
        fields["prompts"] = "\n".join(str(p) for p in fields["prompts"])
    errors: dict[str, str] = {}
    opts = None
    try:
        opts = ValidationOptions.from_dict({k: v for k, v in fields.items() if k not in VALIDATE_HOST_KEYS})
        panel_prompts(opts.prompt_list(), opts.per_token)
    except OptionsError as e:
        errors.update(e.errors)
    except ValueError as e:
        errors["prompts"] = str(e)
    if opts is not None:
        chosen, why = triggers.choose_model([], opts.model)
        if opts.model == settings.FROM_SETTINGS or chosen is None:
            errors["model"] = why or f"Storyboard model {opts.model!r} was not found."
    host = board_jobs._host_fields({"sampler_name": body.get("sampler_name"), "scheduler": body.get("scheduler")},
                                   errors, [], [])
    if errors:
        raise RequestError(errors)
    return ValidationRequest(opts, {"sampler_name": host["sampler_name"], "scheduler": host["scheduler"]})


# -- jobs ---------------------------------------------------------------------------------------------------------
def _stopped(job: Job) -> bool:
    return bool(shared.state.interrupted) or job.stop.is_set()


def run_dataset(job: Job, take_lock: bool) -> None:
    req: DatasetRequest = job.options

    def work():
        state = shared.state

        def progress(done, files, origin):
            job.step, job.total = done, files
            state.job_count, state.job_no = files, done
            state.textinfo = job.message = f"Dataset: file {done + 1} of {files}, {os.path.basename(origin)}"

        tag, close = _interrogator(req.interrogate) if req.interrogate != "none" else (None, None)
        try:
            result = build_dataset(req.options, interrogate=tag, on_progress=progress,
                                   allow_download=not getattr(shared.cmd_opts, "storyboard_no_download", False),
                                   should_stop=lambda: _stopped(job))
        except ValueError as e:
            if not _stopped(job):
                raise
            job.state, job.message = "interrupted", str(e)
            return
        finally:
            if close is not None:
                close()
        job.step = job.total
        out = result.out
        job.files = [os.path.join(out, REPORT), os.path.join(out, SHEET)]
        job.report = {**result.as_dict(), "out": public_path(out), "root": out}
        job.message = result.report_lines()[0]

    run_locked(job, take_lock, "storyboard-dataset", work)


def validation_dir() -> str:
    """Beside the boards: `outputs/storyboard-validation`."""
    return os.path.join(os.path.dirname(board_jobs.boards_dir()), "storyboard-validation")


def _new_folder(model: str) -> str:
    base = os.path.join(validation_dir(), f"{time.strftime('%Y%m%d-%H%M%S')}-{model}")
    folder, k = base, 1
    while os.path.exists(folder):
        k += 1
        folder = f"{base}-{k}"
    return folder


def untrained_vectors(name: str) -> dict:
    """The model's shot tokens as training starts them (their init words' embeddings in the loaded checkpoint), as
    many vectors each as the model has: drawn in their place, they give the chance level."""
    model, why = triggers.choose_model([], name)
    if model is None:
        raise ValueError(why)
    n = int(next(iter(triggers.vectors_for(model).values())).shape[0])
    return untrained_tokens(A1111Adapter(), n)


def run_validation(job: Job, take_lock: bool) -> None:
    req: ValidationRequest = job.options
    o = req.options

    def work():
        board_jobs.load_checkpoint()
        draw_opts = BoardOptions.from_dict({"steps": o.steps, "cfg": o.cfg, "seed": o.seed})
        host = {**req.host, "storyboard_model": o.model, "alwayson_scripts": {}}
        total = 3 * o.per_token * (2 if o.baseline else 1)
        job.total, job.step = total, 0
        shared.state.job_count = total

        def drawer(untrained=None):
            draw = board_jobs.host_drawer(draw_opts, host if untrained is None else {**host, "style_lora": False},
                                          untrained)

            def many(prompts, seeds):
                out = []
                for prompt, seed in zip(prompts, seeds):
                    if _stopped(job):
                        raise Stopped()
                    out.append(draw(prompt, o.negative, seed, o.width, o.height))
                    if _stopped(job):    # an interrupted sampling returns a half-drawn panel
                        raise Stopped()
                return out
            return many

        def progress(offset: int):
            def on_panel(n, _of):
                job.step = shared.state.job_no = offset + n
                shared.state.textinfo = job.message = f"Validation: panel {job.step} of {total}"
            return on_panel

        try:
            result = validate_model(drawer(), o.prompt_list(), o.per_token, o.seed, on_progress=progress(0))
            if o.baseline:   # the chance level: the same prompts and seeds, the tokens untrained, no LoRA
                base = validate_model(drawer(untrained_vectors(o.model)), o.prompt_list(), o.per_token, o.seed,
                                      on_progress=progress(3 * o.per_token))
                result.baseline, result.baseline_panels = base.trained, base.panels
        except Stopped:
            job.state, job.message = "interrupted", "Validation was interrupted; nothing was written."
            return
        folder = _new_folder(o.model)
        job.files = write_validation(result, folder)
        job.report = {"folder": public_path(folder), "model": o.model, "lines": result.lines(),
                      "trained": result.trained.as_dict(),
                      "baseline": result.baseline.as_dict() if result.baseline else None,
                      "chance_level": "the same prompts and seeds with the untrained tokens and no LoRA"}
        job.message = (f"Validated {o.model}: {result.trained.accuracy:.0%} of {result.trained.total} panels in "
                       f"their token's framing" + (f" (chance level {result.baseline.accuracy:.0%})."
                                                    if result.baseline else "."))

    run_locked(job, take_lock, "storyboard-validate", work)


def manager() -> JobManager:
    return manager_for("dataset", lambda job: run_dataset(job, take_lock=True))


def validation_manager() -> JobManager:
    return manager_for("validate", lambda job: run_validation(job, take_lock=True))
