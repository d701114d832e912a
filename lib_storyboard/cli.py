"""Standalone entry point: `python -m lib_storyboard <command> …`, the same engine as the WebUI tab on diffusers."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def _progress_printer(every: int):
    t0 = time.time()

    def on_event(e):
        if e.kind == "step" and (e.step % every == 0 or e.step == e.total):
            print(f"step {e.step}/{e.total}  loss {e.loss:.4f}  {time.time() - t0:.0f}s", flush=True)
        elif e.kind in ("status", "done"):
            print(e.message, flush=True)
        elif e.kind == "saved":
            print(f"saved {len(e.files)} files at step {e.step}", flush=True)
    return on_event


def _parse_sets(pairs: list[str]) -> dict:
    out = {}
    for p in pairs or []:
        if "=" not in p:
            raise ValueError(f"--set takes key=value, not {p!r}.")   # main answers it with exit code 2
        k, v = p.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def cmd_train(args) -> int:
    import torch

    from .adapters.diffusers_sd15 import load_single_file
    from .training.config import ConfigError, TrainConfig
    from .training.data_parallel import DataParallel
    from .training.outputs import OutputPaths
    from .training.precision import load_dtype
    from .training.trainer import Trainer

    options = {}
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            options.update(json.load(f))
    options.update(_parse_sets(args.set))
    options["data_dir"] = args.data
    for key in ("name", "preset", "resume"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    if args.steps:
        options["max_steps"] = args.steps
    if args.resolution:
        options["resolution"] = args.resolution
    try:
        cfg = TrainConfig.from_dict(options)
    except ConfigError as e:
        for msg in e.errors.values():
            print(f"error: {msg}", file=sys.stderr)
        return 2
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    # Under `accelerate launch` / torchrun: one process per device, each on its share of every batch.
    parallel = DataParallel.from_environment(cpu=device == "cpu")
    if parallel:
        device = parallel.device
    dtype = load_dtype(cfg.precision, torch.device(device).type)
    adapter = load_single_file(args.model, device=device, weight_dtype=dtype)
    adapter.clip_skip = cfg.clip_skip
    paths = OutputPaths.under(args.out)
    try:
        result = Trainer(adapter, cfg, paths, on_event=_progress_printer(args.print_every), parallel=parallel).run()
    finally:
        if parallel:
            parallel.close()
    if parallel and not parallel.main:
        return 0
    _print_report(result.report)
    print(f"{result.status} at step {result.step}; files:")
    for f in result.files:
        print("  " + f)
    return 0


def cmd_export_toybase(args) -> int:
    from .models import toybase_path
    from .models.a1111_export import export_checkpoint

    src = toybase_path()
    if not src:
        print("error: the toy-world base is not in this copy of the extension.", file=sys.stderr)
        return 2
    for p in export_checkpoint(src, args.dest, args.name):
        print("wrote " + p)
    print("Refresh the checkpoint list in the WebUI and pick it; generate at 64x64.")
    return 0


def _print_report(report: dict) -> None:
    counts = report.get("counts", {})
    print(f"dataset: {report.get('used', 0)} images used {counts}; "
          f"{len(report.get('skipped', []))} skipped, {len(report.get('unlabelled', []))} without a shot")
    for s in report.get("skipped", []):
        print(f"  skipped {s.get('path')}: {s.get('reason')}")
    for u in report.get("unlabelled", []):
        print(f"  no shot: {u}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib_storyboard", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train the shot tokens and style LoRA on an SD1.5 .safetensors checkpoint")
    t.add_argument("--model", required=True, help="SD1.5 checkpoint (.safetensors, LDM keys)")
    t.add_argument("--data", required=True, help="folder of images with same-stem .txt tag files")
    t.add_argument("--out", default="storyboard-out", help="output folder (Lora/, embeddings/, state/)")
    t.add_argument("--name", help="model name (file stem)")
    t.add_argument("--preset", choices=["low-vram", "balanced", "quality"])
    t.add_argument("--steps", type=int)
    t.add_argument("--resolution", type=int)
    t.add_argument("--resume", action="store_true", default=None, help="continue the saved run of this name")
    t.add_argument("--device", choices=["cpu", "cuda"])
    t.add_argument("--config", help="JSON file of training options")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="any training option, repeatable")
    t.add_argument("--print-every", type=int, default=10)
    d = sub.add_parser("demo", help="train on the built-in sample set and base model, draw a storyboard sheet")
    d.add_argument("--out", default="storyboard-demo")
    d.add_argument("--steps", type=int, default=None)
    d.add_argument("--seed", type=int, default=0)
    x = sub.add_parser("export-toybase", help="copy the toy-world base into A1111's models/Stable-diffusion "
                                              "with the .yaml the WebUI needs for its sizes")
    x.add_argument("dest", help="the WebUI's models/Stable-diffusion folder")
    x.add_argument("--name", default="toybase")
    from .board.command import add_parsers
    add_parsers(sub)
    from .dataset_builder.command import add_parsers as add_dataset_parsers
    from .framing.command import add_parsers as add_framing_parsers
    add_dataset_parsers(sub)
    add_framing_parsers(sub)
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        if getattr(args, "run", None):  # subcommands that carry their own handler (dataset, classify, validate)
            return args.run(args)
        if args.cmd == "train":
            return cmd_train(args)
        if args.cmd == "export-toybase":
            return cmd_export_toybase(args)
        if args.cmd == "board":
            from .board.command import cmd_board
            return cmd_board(args, _parse_sets(args.set))
        if args.cmd == "board-redraw":
            from .board.command import cmd_board_redraw
            return cmd_board_redraw(args)
        from .demo import run_demo
        return run_demo(args.out, steps=args.steps, seed=args.seed)
    except ValueError as e:  # our refusals (bad model, dataset, state, options) are one sentence each
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
