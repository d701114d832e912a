"""`python -m lib_storyboard dataset …`: photos, stills or videos → a labelled sketch dataset, without the WebUI."""
from __future__ import annotations

import sys

from ..options import OptionsError


def add_parsers(sub) -> None:
    d = sub.add_parser("dataset", help="build a labelled sketch dataset from photos, film stills or videos")
    d.add_argument("--source", required=True, help="a folder of images and/or videos, or one video file")
    d.add_argument("--out", required=True, help="a new or empty folder for the dataset")
    d.add_argument("--sketch", default="lineart_standard",
                   help="none, canny, lineart_standard (no weights); hed, lineart, pidinet (hub weights)")
    d.add_argument("--frames-per-cut", type=int, default=1)
    d.add_argument("--max-frames", type=int, default=0, help="per video, 0: no limit")
    d.add_argument("--min-confidence", type=float, default=0.5)
    d.add_argument("--repeats", type=int, default=10)
    d.add_argument("--max-side", type=int, default=1024)
    d.add_argument("--prefix", default="", help="comma-separated tags for every image")
    d.add_argument("--blacklist", default="", help="comma-separated tags never written")
    d.add_argument("--keep-duplicates", action="store_true", help="keep near-duplicate images")
    d.add_argument("--no-download", action="store_true", help="never download annotator weights")
    d.set_defaults(run=cmd_dataset)


def cmd_dataset(args) -> int:
    from .build import REPORT, SHEET, build_dataset
    from .options import DatasetOptions

    try:
        opts = DatasetOptions.from_dict({
            "source": args.source, "out": args.out, "sketch": args.sketch, "frames_per_cut": args.frames_per_cut,
            "max_frames_per_video": args.max_frames, "min_confidence": args.min_confidence,
            "repeats": args.repeats, "max_side": args.max_side, "prefix": args.prefix, "blacklist": args.blacklist,
            "dedupe": not args.keep_duplicates})
    except OptionsError as e:
        for msg in e.errors.values():
            print(f"error: {msg}", file=sys.stderr)
        return 2

    def progress(n, files, origin):
        print(f"  [{n + 1}/{files}] {origin}", flush=True)

    result = build_dataset(opts, allow_download=not args.no_download, on_progress=progress)
    for line in result.report_lines():
        print(line)
    print(f"report: {result.out}/{REPORT}\ncontact sheet: {result.out}/{SHEET}")
    return 0
