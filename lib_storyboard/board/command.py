"""`python -m lib_storyboard board …` and `board-redraw …`: boards on the diffusers adapter, without the WebUI."""
from __future__ import annotations

import os
import sys

from ..options import OptionsError
from .options import BoardOptions
from .prompts import controlnet_need
from .scenes import SceneError, SceneList, read_scenes

# The toy-world base draws 64-px panels, judged clearest at guidance 2 (toyworld/proof.py's TOY_RECIPE note).
TOY_DEFAULTS = dict(width=64, height=64, cfg=2.0)


def _errors(e: Exception) -> int:
    sentences = e.errors.values() if isinstance(e, OptionsError) else e.errors
    for s in sentences:
        print(f"error: {s}", file=sys.stderr)
    return 2


def _load_model(model: str, device: str | None):
    import torch

    from ..adapters.diffusers_sd15 import load_single_file
    from ..models import toybase_path

    path = model
    if model == "toy":
        path = toybase_path()
        if not path:
            raise ValueError("The toy-world base is not in this copy of the extension; pass --model with an SD1.5 "
                             ".safetensors checkpoint.")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        # As the demo: this model's ops are tiny, and more threads than half the cores spin more than they compute.
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    return load_single_file(path, device=device), os.path.abspath(path)


def _model_info(adapter, checkpoint: str, storyboard: str | None) -> dict:
    return {"checkpoint": adapter.model_name, "checkpoint_hash": adapter.model_hash, "checkpoint_path": checkpoint,
            "storyboard": os.path.splitext(os.path.basename(storyboard))[0] if storyboard else "",
            "storyboard_path": os.path.abspath(storyboard) if storyboard else "", "sampler": "DDIM"}


def _report(files, warnings: list[str], written: list[str] | None = None) -> None:
    for w in warnings:
        print(f"warning: {w}")
    for p in written or files.all():
        print(f"wrote {p}")
    print(f"board folder: {files.folder}")


def _controlnet_problem(options: BoardOptions, scenes: SceneList, path: str | None) -> str | None:
    need = controlnet_need(options, scenes)
    if need and not path:
        return f"{need} needs an openpose ControlNet: pass --controlnet with an SD1.5 ControlNet .safetensors."
    if path and not os.path.isfile(path):
        return f"The ControlNet file {path} does not exist."
    return None


def _load_controlnet(options: BoardOptions, scenes: SceneList, path: str | None, adapter):
    if not controlnet_need(options, scenes) or not path:
        return None
    from ..composition.controlnet_diffusers import load_controlnet

    return load_controlnet(path, adapter.unet)


def cmd_board(args, sets: dict) -> int:
    from .draw import diffusers_drawer
    from .writer import write_board

    # Everything the user wrote is checked before the model loads: nothing is drawn from a bad list.
    try:
        scene_list = read_scenes(args.scenes)
        defaults = TOY_DEFAULTS if args.model == "toy" else {}
        options = BoardOptions.from_dict({**defaults, **scene_list.shared, **sets})
    except (SceneError, OptionsError) as e:
        return _errors(e)
    if args.storyboard and not os.path.isfile(args.storyboard):
        return _errors(SceneError([f"The storyboard model {args.storyboard} does not exist."]))
    warnings = []
    if not args.storyboard:
        warnings.append("No storyboard model was given (--storyboard), so the shot triggers are plain words to the "
                        "checkpoint and the framing is not controlled.")
    problem = _controlnet_problem(options, scene_list, args.controlnet)
    if problem:
        return _errors(SceneError([problem]))
    adapter, checkpoint = _load_model(args.model, args.device)
    try:
        controlnet = _load_controlnet(options, scene_list, args.controlnet, adapter)
    except ValueError as e:
        return _errors(SceneError([str(e)]))
    name = os.path.splitext(os.path.basename(args.scenes))[0]
    info = {**_model_info(adapter, checkpoint, args.storyboard),
            "controlnet_path": os.path.abspath(args.controlnet) if controlnet is not None else ""}
    with diffusers_drawer(adapter, options, args.storyboard, controlnet, scene_list) as draw:
        files = write_board(args.out, name, scene_list, options, draw, info,
                            on_panel=lambda i, n: print(f"panel {i}/{n}", flush=True))
    _report(files, warnings + files.warnings)
    return 0


def cmd_board_redraw(args) -> int:
    from .draw import diffusers_drawer
    from .writer import load_board, redraw_panel

    board = load_board(args.board)
    model = args.model or board.model.get("checkpoint_path") or "toy"
    storyboard = args.storyboard or board.model.get("storyboard_path") or None
    controlnet = args.controlnet or board.model.get("controlnet_path") or None
    problem = _controlnet_problem(board.options, board.scenes, controlnet)
    if problem:
        return _errors(SceneError([problem]))
    adapter, checkpoint = _load_model(model, args.device)
    try:
        controlnet = _load_controlnet(board.options, board.scenes, controlnet, adapter)
    except ValueError as e:
        return _errors(SceneError([str(e)]))
    with diffusers_drawer(adapter, board.options, storyboard, controlnet, board.scenes) as draw:
        files = redraw_panel(args.board, args.panel, draw, args.seed)
    panel = next(p for p in files.panels if os.path.basename(p) == f"panel-{args.panel:03d}.png")
    _report(files, files.warnings, [panel, files.png, files.pdf, files.json])   # the other panels were left alone
    return 0


def add_parsers(sub) -> None:
    b = sub.add_parser("board", help="draw a storyboard board (PNG, PDF, JSON and one PNG per panel) from a scene "
                                     "list: CSV, JSON, or lines of shot | description | dialogue [| seed] [| pose]")
    b.add_argument("--scenes", required=True, help="scene list (.csv, .json, or any other name for lines)")
    b.add_argument("--out", default="storyboard-boards", help="each board gets a new folder under this one")
    b.add_argument("--model", default="toy", help="'toy' (the shipped toy-world base) or an SD1.5 .safetensors")
    b.add_argument("--storyboard", help="a trained storyboard model (the LoRA .safetensors with its shot tokens)")
    b.add_argument("--set", action="append", metavar="KEY=VALUE", help="any board option, repeatable: "
                   + ", ".join(BoardOptions.__fields__))
    b.add_argument("--controlnet", help="an SD1.5 openpose ControlNet .safetensors, for --set composition=… or "
                   "scenes with a pose")
    b.add_argument("--device", choices=["cpu", "cuda"])
    r = sub.add_parser("board-redraw", help="draw one panel of a board again with a new seed; the other panel "
                                            "files stay as they are")
    r.add_argument("board", help="the board's folder (the one holding board.json)")
    r.add_argument("--panel", type=int, required=True, help="the panel's scene number")
    r.add_argument("--seed", type=int, help="the new seed (default: a random one)")
    r.add_argument("--model", help="default: the checkpoint board.json names")
    r.add_argument("--storyboard", help="default: the storyboard model board.json names")
    r.add_argument("--controlnet", help="default: the ControlNet board.json names (boards with a composition or "
                   "poses)")
    r.add_argument("--device", choices=["cpu", "cuda"])
