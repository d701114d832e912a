"""`python -m lib_storyboard classify …` and `validate …`: the shot classifier on images, on its labelled set, and
on panels drawn by a trained storyboard model (diffusers), without the WebUI."""
from __future__ import annotations

import json
import os


def add_parsers(sub) -> None:
    c = sub.add_parser("classify", help="say which shot each image is (close-up, medium, full, no person) and why")
    c.add_argument("images", nargs="*", help="image files")
    c.add_argument("--evaluate", action="store_true",
                   help="measure the classifier on the labelled set built from photos shipped in packages")
    c.add_argument("--sketch", action="append", default=None, metavar="STYLE",
                   help="with --evaluate: also on sketch versions (repeatable; default canny and lineart_standard)")
    c.add_argument("--yolo", help="optional YOLO person model file (.pt) for images where no body is found")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(run=cmd_classify)
    v = sub.add_parser("validate", help="draw panels with each shot token of a storyboard model and measure their "
                                        "framing with the classifier, against the untrained tokens")
    v.add_argument("--model", required=True, help="SD1.5 checkpoint (.safetensors), or 'toy' for the toy base")
    v.add_argument("--storyboard", required=True, help="the trained storyboard model (.safetensors)")
    v.add_argument("--prompt", action="append", required=True, help="a panel prompt without trigger (repeatable)")
    v.add_argument("--per-token", type=int, default=4)
    v.add_argument("--out", required=True, help="a new or empty folder for the sheets and the report")
    v.add_argument("--size", type=int, default=None, help="panel size (default 512; 64 for the toy base)")
    v.add_argument("--steps", type=int, default=20)
    v.add_argument("--cfg", type=float, default=None, help="guidance (default 7; 2 for the toy base)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--no-baseline", action="store_true", help="skip the untrained-token chance level")
    v.add_argument("--device", choices=["cpu", "cuda"])
    v.set_defaults(run=cmd_validate)


def _yolo(path: str | None):
    if not path:
        return None
    if not os.path.isfile(path):
        raise ValueError(f"The YOLO model file {path} does not exist.")
    from ..detection.yolo import load_model, prepare_ultralytics_env

    prepare_ultralytics_env(offline=True)
    return load_model(path)


def cmd_classify(args) -> int:
    from PIL import Image

    from ..dataset.images import load_rgb
    from .classify import classify_image

    if args.evaluate:
        return _evaluate(args)
    if not args.images:
        raise ValueError("Give image files to classify, or --evaluate.")
    yolo = _yolo(args.yolo)
    out = []
    for path in args.images:
        try:
            image: Image.Image = load_rgb(path, min_side=16)
        except ValueError as e:
            print(f"{path}: skipped, {e}")
            continue
        g = classify_image(image, yolo_model=yolo)
        out.append({"path": path, **g.as_dict()})
        if not args.json:
            print(f"{path}: {g.label} ({g.confidence:.2f}), {g.reason}")
    if args.json:
        print(json.dumps(out, indent=1))
    return 0


def _evaluate(args) -> int:
    from ..dataset_builder.sketch import Sketcher
    from .evalset import build_samples
    from .evaluate import evaluate

    samples = build_samples()
    runs = [("photos", None)] + [(f"{s} sketches", Sketcher(s, allow_download=False))
                                 for s in (args.sketch or ["lineart_standard", "canny"])]
    report = {}
    for title, sketcher in runs:
        conf = evaluate(samples, sketcher)
        report[title] = conf.as_dict()
        if not args.json:
            print(f"{title}:")
            print("\n".join("  " + r for r in conf.rows()))
    if args.json:
        print(json.dumps(report, indent=1))
    return 0


def cmd_validate(args) -> int:
    import torch

    from ..adapters.diffusers_sd15 import load_single_file
    from ..dataset_builder.build import check_output_folder
    from ..models import toybase_path
    from ..storyboard_models import token_vectors
    from ..toyworld.proof import untrained_tokens
    from ..training.lora import lora_attached
    from ..training.preview import sample
    from .validate import panel_prompts, validate_model, write_validation

    panel_prompts(args.prompt, args.per_token)            # bad prompts or counts refused before any model loads
    out = check_output_folder(args.out)
    if not os.path.isfile(args.storyboard):
        raise ValueError(f"The storyboard model {args.storyboard} does not exist.")
    toy = args.model == "toy"
    path = toybase_path() if toy else args.model
    if not path or not os.path.isfile(path):
        raise ValueError(f"The checkpoint {args.model} does not exist.")
    size = args.size or (64 if toy else 512)
    cfg = args.cfg if args.cfg is not None else (2.0 if toy else 7.0)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    adapter = load_single_file(path, device=device)
    tokens = token_vectors(args.storyboard)
    n_vectors = next(iter(tokens.values())).shape[0]

    def drawer(toks):
        return lambda prompts, seeds: sample(adapter, prompts, toks, seeds, (size, size), steps=args.steps, cfg=cfg)

    def progress(done, total):
        print(f"  panel {done}/{total}", flush=True)

    baseline = None if args.no_baseline else drawer(untrained_tokens(adapter, n_vectors))
    with lora_attached(adapter, args.storyboard):
        result = validate_model(drawer(tokens), args.prompt, args.per_token, args.seed, on_progress=progress)
    if baseline is not None:  # the same prompts and seeds, untrained tokens and no LoRA: the chance level
        base = validate_model(baseline, args.prompt, args.per_token, args.seed, on_progress=progress)
        result.baseline, result.baseline_panels = base.trained, base.panels
    for line in result.lines():
        print(line)
    for f in write_validation(result, out):
        print(f"wrote {f}")
    return 0
