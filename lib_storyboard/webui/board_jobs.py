"""Boards in the host: every panel goes through the WebUI's own txt2img processing, so the shot triggers, the chosen
storyboard model, the detailer and every other always-on script apply, and each panel file carries the host's
infotext (PNG Info → txt2img draws it again). A board holds the host's queue lock from its first panel to its last,
so no generation swaps the checkpoint mid-board; the host's progress bar, Interrupt and Skip work on it.
"""
import json
import os
from contextlib import closing
from dataclasses import dataclass, field

from modules import processing, scripts, sd_models, sd_samplers, sd_schedulers, shared

from .. import shots
from ..board.options import BoardOptions
from ..board.prompts import controlnet_need
from ..composition.panel import panel_pose
from ..board.scenes import SEED_MAX, SceneError, SceneList, guess_format, parse_scenes
from ..board.writer import load_board, redraw_panel, write_board
from ..detailer.args import SCRIPT_TITLE as DETAILER_TITLE
from ..jobs import Job, JobManager, manager_for
from ..options import OptionsError
from . import composition_hooks, controlnet_bridge, settings, triggers
from .detectors import detailer_request_error
from .host_lock import run_locked
from .paths import inside_folder

TRIGGERS_TITLE = "Storyboard triggers"
HOST_KEYS = ("scenes", "format", "sampler_name", "scheduler", "storyboard_model", "detailer", "alwayson_scripts",
             "controlnet_model")
DEFAULT_SAMPLER = "Euler a"
COMPOSITION_KEYS = ("composition", "composition_weight")   # board options drawn through sd-webui-controlnet


BoardRequestError = OptionsError   # one sentence per bad field (key "" for the request as a whole)


@dataclass
class BoardRequest:
    scenes: SceneList
    options: BoardOptions
    host: dict = field(default_factory=dict)   # sampler_name, scheduler, storyboard_model, alwayson_scripts,
    # controlnet_model (with a composition or scenes with a pose)
    warnings: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"scenes": self.scenes.as_dict(), **self.options.to_dict(), **self.host}


@dataclass
class RedrawRequest:
    board: str          # the board folder's name under the boards folder
    panel: int
    seed: int | None

    def to_dict(self) -> dict:
        return {"board": self.board, "panel": self.panel, "seed": self.seed}


def boards_dir() -> str:
    """Boards go beside the host's txt2img outputs: `outputs/storyboard-boards` unless the setting names a folder."""
    chosen = (settings.get(settings.OPT_BOARD_DIR, "") or "").strip()
    if chosen:
        return os.path.abspath(chosen)
    samples = shared.opts.outdir_samples or shared.opts.outdir_txt2img_samples or "outputs/txt2img-images"
    return os.path.abspath(os.path.join(os.path.dirname(os.path.normpath(samples)) or ".", "storyboard-boards"))


def board_folder(name) -> str:
    """The folder of board `name` (a folder name under the boards folder, nothing else), or ValueError."""
    root = boards_dir()
    if not isinstance(name, str) or not name.strip() or name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"{name!r} is not a board name; boards are named by their folder, as listed by the board "
                         f"list.")
    folder = os.path.join(root, name)
    if not inside_folder(root, folder) or not os.path.isfile(os.path.join(folder, "board.json")):
        raise ValueError(f"There is no board named {name}.")
    return folder


def list_boards() -> list[dict]:
    """The boards in the boards folder, newest first: name, title, panel count, when."""
    root = boards_dir()
    out = []
    for name in sorted(os.listdir(root), reverse=True) if os.path.isdir(root) else []:
        try:
            board = load_board(os.path.join(root, name))
        except (OSError, ValueError, KeyError):
            continue   # not a board, or one written by a newer version
        out.append({"name": name, "title": board.options.title, "panels": len(board.scenes.scenes),
                    "not_drawn": sorted(board.not_drawn),
                    "modified": os.path.getmtime(os.path.join(root, name, "board.json"))})
    return out


# -- the request ----------------------------------------------------------------------------------------------------
def _script(title: str):
    return next((s for s in scripts.scripts_txt2img.alwayson_scripts if s.title().lower() == title.lower()), None)


def _host_fields(body: dict, errors: dict, warnings: list, prompts: list[str]) -> dict:
    sampler = body.get("sampler_name") or DEFAULT_SAMPLER
    if not isinstance(sampler, str) or sampler not in sd_samplers.all_samplers_map:
        errors["sampler_name"] = f"{sampler!r} is not a sampler of this WebUI; choose one of " \
                                 f"{', '.join(s.name for s in sd_samplers.visible_samplers())}."
    scheduler = body.get("scheduler") or "Automatic"
    names = ["Automatic"] + [s.label for s in sd_schedulers.schedulers]
    if scheduler not in names:
        errors["scheduler"] = f"{scheduler!r} is not a schedule type of this WebUI; choose one of {', '.join(names)}."
    model = body.get("storyboard_model") or settings.FROM_SETTINGS
    if not isinstance(model, str):
        errors["storyboard_model"] = "storyboard_model must be the name of a trained storyboard model."
    else:
        chosen, why = triggers.choose_model(prompts, model)
        if chosen is None and model != settings.FROM_SETTINGS:
            errors["storyboard_model"] = why
        elif why:
            warnings.append(why)
    alwayson = body.get("alwayson_scripts") or {}
    if not isinstance(alwayson, dict) or not all(isinstance(v, dict) for v in alwayson.values()):
        errors["alwayson_scripts"] = 'alwayson_scripts must be an object like txt2img\'s: {"script title": ' \
                                     '{"args": [...]}}.'
        alwayson = {}
    for name in alwayson:
        if _script(str(name)) is None:
            errors["alwayson_scripts"] = f"There is no always-on txt2img script called {name!r}."
    detailer = body.get("detailer", False)
    if not isinstance(detailer, bool):
        errors["detailer"] = "detailer must be true or false."
    elif detailer and not any(str(k).lower() == DETAILER_TITLE.lower() for k in alwayson):
        alwayson = {**alwayson, DETAILER_TITLE: {"args": [True]}}   # pass 1 with its defaults
    problem = detailer_request_error({"alwayson_scripts": alwayson}, is_img2img=False) or \
        composition_hooks.request_error({"alwayson_scripts": alwayson})   # as txt2img's route
    if problem:
        errors["alwayson_scripts"] = problem
    return {"sampler_name": sampler, "scheduler": scheduler, "storyboard_model": model, "alwayson_scripts": alwayson}


def _controlnet_field(name, options: BoardOptions | None, scene_list: SceneList | None, errors: dict) -> str | None:
    """The ControlNet model the poses use (the extension's listed name), or None when no panel gets a pose (neither a
    composition nor a scene with a pose of its own)."""
    if name not in (None, "") and not isinstance(name, str):
        errors["controlnet_model"] = "controlnet_model must be the name of a ControlNet model."
        return None
    if options is None or not controlnet_need(options, scene_list):
        return None
    if not controlnet_bridge.available():   # not silently ignored
        errors["composition" if options.composition != "none" else "scenes"] = controlnet_bridge.MISSING
        return None
    try:
        return controlnet_bridge.choose_model(name)
    except ValueError as e:
        errors["controlnet_model"] = str(e)
        return None


def validate_board_request(body) -> BoardRequest:
    """A board request from the tab or the API → BoardRequest, or BoardRequestError naming every problem: a bad
    scene row or option draws nothing."""
    if not isinstance(body, dict):
        raise BoardRequestError({"": "The request body must be a JSON object with the scene list and board options."})
    unknown = [k for k in body if k not in HOST_KEYS and k not in BoardOptions.__fields__]
    if unknown:
        raise BoardRequestError({k: f"{k!r} is not a board field." for k in unknown})
    errors: dict[str, str] = {}
    scenes_text, fmt = body.get("scenes"), body.get("format") or "auto"
    if isinstance(scenes_text, (list, dict)):   # an API client may send the JSON scene list as JSON
        scenes_text, fmt = json.dumps(scenes_text), "json"
    scene_list = None
    if not isinstance(scenes_text, str) or not scenes_text.strip():
        errors["scenes"] = "The scene list is empty: one scene a line, shot | description | dialogue."
    elif fmt not in ("auto", "csv", "json", "lines"):
        errors["format"] = f"format must be auto, csv, json or lines, not {fmt!r}."
    else:
        try:
            scene_list = parse_scenes(scenes_text, guess_format(scenes_text) if fmt == "auto" else fmt)
        except SceneError as e:
            errors["scenes"] = " ".join(e.errors)
    options = None
    try:
        shared_fields = scene_list.shared if scene_list else {}
        fields = {**shared_fields, **{k: v for k, v in body.items() if k not in HOST_KEYS}}
        if not fields.get("font_path") and settings.get(settings.OPT_BOARD_FONT):
            fields["font_path"] = settings.get(settings.OPT_BOARD_FONT)   # the WebUI's setting, unless the request names one
        options = BoardOptions.from_dict(fields)
    except OptionsError as e:
        errors.update(e.errors)
    warnings: list[str] = []
    prompts = [s.description for s in scene_list.scenes] if scene_list else []
    host = _host_fields(body, errors, warnings, prompts)
    cn_model = _controlnet_field(body.get("controlnet_model"), options, scene_list, errors)
    if cn_model:
        host["controlnet_model"] = cn_model
    if errors:
        raise BoardRequestError(errors)
    return BoardRequest(scene_list, options, host, warnings)


def validate_redraw(name, panel, seed) -> RedrawRequest:
    errors = {}
    try:
        board = load_board(board_folder(name))
    except ValueError as e:
        raise BoardRequestError({"board": str(e)}) from None
    count = len(board.scenes.scenes)
    if isinstance(panel, bool) or not isinstance(panel, int) or not 1 <= panel <= count:
        errors["panel"] = f"The board has panels 1 to {count}; there is no panel {panel}."
    if seed is not None and seed != -1 and (isinstance(seed, bool) or not isinstance(seed, int)
                                           or not 0 <= seed <= SEED_MAX):
        errors["seed"] = f"The seed must be a whole number from 0 to {SEED_MAX}, or -1 for a random one."
    if errors:
        raise BoardRequestError(errors)
    return RedrawRequest(name, panel, None if seed in (None, -1) else seed)


# -- drawing through the host -----------------------------------------------------------------------------------
def _script_args(host: dict) -> tuple:
    """Every txt2img script's arguments: the UI's defaults, with the request's always-on scripts and the triggers'
    storyboard model put in, as the host's own API fills them."""
    runner = scripts.scripts_txt2img
    args = [None] * max([1] + [s.args_to or 0 for s in runner.scripts])
    args[0] = 0    # no selectable script
    inputs = getattr(runner, "inputs", None) or []
    for s in runner.alwayson_scripts:
        if s.args_from is None:
            continue
        args[s.args_from:s.args_to] = [getattr(c, "value", None) for c in inputs[s.args_from:s.args_to]] + \
            [None] * max(0, s.args_to - max(s.args_from, len(inputs)))
    wanted = {TRIGGERS_TITLE: {"args": [host["storyboard_model"]]}, **host["alwayson_scripts"]}
    for title, entry in wanted.items():
        s = _script(title)
        if s is not None and s.args_from is not None:
            given = list(entry.get("args", []))[:s.args_to - s.args_from]
            args[s.args_from:s.args_from + len(given)] = given
    return tuple(args)


def host_drawer(options: BoardOptions, host: dict, untrained: dict | None = None, scenes: SceneList | None = None):
    """A DrawPanel over the host's txt2img processing; the image carries the host's infotext. A panel without a
    shot (an insert, an establishing shot) gets the storyboard model's style LoRA as a plain LoRA tag, so every
    panel of the board is in the trained style; the triggers add it to the others. `untrained` (stem → vectors):
    the triggers draw with these vectors and no LoRA instead (validation's chance level). `scenes`: the board's
    scene list, whose own poses need the ControlNet as a composition does."""
    args = _script_args(host)
    opts = shared.opts
    posed = controlnet_need(options, scenes) is not None
    if posed and not controlnet_bridge.available():   # a redraw of a posed board where it is gone
        raise ValueError(controlnet_bridge.MISSING)
    cn_model = controlnet_bridge.choose_model(host.get("controlnet_model")) if posed else None
    model, _ = triggers.choose_model([], host["storyboard_model"])
    # host["style_lora"] False: no style LoRA on panels without a trigger (validation's chance level)
    style = host.get("style_lora", True) and settings.get(settings.OPT_APPLY_LORA, True) and model is not None

    def draw(prompt, negative, seed, width, height, pose="none"):
        if style and not shots.find_triggers(prompt):
            prompt = triggers.add_lora_tag(prompt, model.name, float(settings.get(settings.OPT_LORA_WEIGHT, 1.0)))
        p = processing.StableDiffusionProcessingTxt2Img(
            sd_model=shared.sd_model, outpath_samples=opts.outdir_samples or opts.outdir_txt2img_samples,
            outpath_grids=opts.outdir_grids or opts.outdir_txt2img_grids, prompt=prompt, negative_prompt=negative,
            seed=seed, steps=options.steps, cfg_scale=options.cfg, width=width, height=height,
            sampler_name=host["sampler_name"], batch_size=1, n_iter=1,
            do_not_save_samples=True, do_not_save_grid=True)   # the board writes the panel files itself
        if host.get("scheduler") and host["scheduler"] != "Automatic":
            p.scheduler = host["scheduler"]
        p.is_api = True   # as the host's API: the UI-only setup scripts (seed, sampler widgets) leave p alone
        p.scripts = scripts.scripts_txt2img
        # the panel's pose (framed as its shot, read off its trigger) in the ControlNet's first unit
        hint = panel_pose(pose, prompt, width, height)
        if hint is not None and not posed:   # a caller that did not pass the board's scenes, so nothing was resolved
            raise ValueError(f"The pose {pose!r} needs a ControlNet model, and this drawer was made for panels "
                             f"without poses.")
        p.script_args = args if hint is None else controlnet_bridge.with_unit(
            args, hint, cn_model, options.composition_weight)
        if untrained is not None:
            p._storyboard_untrained = untrained
        with closing(p):
            processed = processing.process_images(p)
        image = processed.images[0]
        image.info["parameters"] = processed.infotexts[0]
        return image

    return draw


def _model_info(host: dict) -> dict:
    info = getattr(shared.sd_model, "sd_checkpoint_info", None)
    chosen, _ = triggers.choose_model([], host["storyboard_model"])
    return {"checkpoint": getattr(info, "name_for_extra", "") or getattr(info, "title", ""),
            "checkpoint_hash": getattr(info, "shorthash", "") or "", "storyboard": chosen.name if chosen else "",
            "sampler": host["sampler_name"], "host": host}


def _stopped(job: Job) -> bool:
    return bool(shared.state.interrupted) or job.stop.is_set()


def load_checkpoint() -> None:
    """As txt2img does: first the model the WebUI may still be loading at startup (shared.sd_model waits for it
    under the host's lock; a second load beside it fails), then the checkpoint the settings name."""
    shared.sd_model  # noqa: B018 (the property waits)
    sd_models.reload_model_weights()


def run_board(job: Job, take_lock: bool) -> None:
    req: BoardRequest = job.options

    def work():
        load_checkpoint()
        total = len(req.scenes.scenes)
        job.total, job.step = total, 0
        shared.state.job_count = total
        job.message = f"Drawing panel 1 of {total}."

        def on_panel(done, n):
            job.step = done
            job.message = f"Drew panel {done} of {n}."

        draw = host_drawer(req.options, req.host, scenes=req.scenes)
        files = write_board(boards_dir(), "board", req.scenes, req.options, draw,
                            _model_info(req.host), on_panel=on_panel, should_stop=lambda: _stopped(job))
        if files is None:
            job.message = "Stopped before the first panel was finished; nothing was written."
            return
        job.files = files.all()
        board = load_board(files.folder)
        job.report = {"board": os.path.basename(files.folder), "panels": len(req.scenes.scenes),
                      "not_drawn": sorted(board.not_drawn), "warnings": req.warnings + files.warnings}
        job.message = (f"Stopped after {job.step} of {total} panels; the rest show as not drawn — redraw them one by "
                       f"one." if board.not_drawn else f"Drew {total} panels.")
    run_locked(job, take_lock, "storyboard-board", work)


def run_redraw(job: Job, take_lock: bool) -> None:
    req: RedrawRequest = job.options

    def work():
        folder = board_folder(req.board)
        board = load_board(folder)
        host = {"sampler_name": DEFAULT_SAMPLER, "scheduler": "Automatic", "storyboard_model": settings.FROM_SETTINGS,
                "alwayson_scripts": {}, **board.model.get("host", {})}
        job.total, job.step = 1, 0
        shared.state.job_count = 1
        warnings = []
        loaded = getattr(getattr(shared.sd_model, "sd_checkpoint_info", None), "shorthash", "")
        if board.model.get("checkpoint_hash") and loaded and loaded != board.model["checkpoint_hash"]:
            warnings.append(f"Panel {req.panel} was redrawn with the loaded checkpoint ({loaded}); the board was "
                            f"drawn with {board.model.get('checkpoint')} ({board.model['checkpoint_hash']}).")
        files = redraw_panel(folder, req.panel, host_drawer(board.options, host, scenes=board.scenes), req.seed,
                             should_stop=lambda: _stopped(job))
        if files is None:
            job.message = "Interrupted; the panel was not redrawn and the board is as it was."
            return
        job.step = 1
        job.files = files.all()
        again = load_board(folder)
        job.report = {"board": req.board, "panel": req.panel, "seed": again.plans()[req.panel - 1].seed,
                      "not_drawn": sorted(again.not_drawn), "warnings": warnings + files.warnings}
        job.message = f"Redrew panel {req.panel} with seed {job.report['seed']}."
    run_locked(job, take_lock, "storyboard-board", work)


def _run(job: Job) -> None:
    (run_redraw if isinstance(job.options, RedrawRequest) else run_board)(job, take_lock=True)


def manager() -> JobManager:
    return manager_for("board", _run)
