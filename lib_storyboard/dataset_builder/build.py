"""Source → classified, sketched, tagged images → a dataset folder the trainer reads as it is.

Layout: `<out>/<repeats>_<shot>/<stem>.png` with a same-stem `.txt` of tags (the shot's name first), beside
`report.json` (counts, every image's shot, confidence and reason, what was skipped and why) and
`contact_sheet.gif` (GIF, not PNG: the trainer's scan takes every PNG for a training image).

Everything is written inside one atomic group: until the last file is done, files exist only as hidden
temporaries; an error, a refusal or an interrupt removes them, so the folder holds a whole dataset or nothing.
The shot is measured on the photo, before sketch conversion: the classifier is far surer on photos.
"""
from __future__ import annotations

import io
import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from PIL import Image

from ..formats.atomic import atomic_group, atomic_write_bytes, atomic_write_text
from ..framing.classify import ShotGuess, classify_image
from ..shots import BY_KEY, SHOTS
from .dedupe import Deduper
from .options import DatasetOptions
from .sheet import contact_sheet
from .sources import SourceItem, SourceSkip, VideoSummary, iter_sources, list_sources
from .tags import caption_tags, split_tags

REPORT = "report.json"
SHEET = "contact_sheet.gif"


@dataclass
class BuiltImage:
    file: str           # relative to the output folder, "10_cu/clip_f000120.png"
    origin: str
    shot: str
    confidence: float
    reason: str
    tags: list[str]


@dataclass
class BuildResult:
    out: str
    images: list[BuiltImage] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)      # {"origin", "reason"}
    videos: list[VideoSummary] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        c = Counter(i.shot for i in self.images)
        return {s.key: c.get(s.key, 0) for s in SHOTS}

    def as_dict(self) -> dict:
        return {"out": self.out, "counts": self.counts(), "images": [asdict(i) for i in self.images],
                "skipped": self.skipped, "videos": [asdict(v) for v in self.videos],
                "report": self.report_lines()}

    def report_lines(self) -> list[str]:
        per_shot = ", ".join(f"{BY_KEY[k].label} {n}" for k, n in self.counts().items())
        lines = [f"Wrote {len(self.images)} images to {self.out} ({per_shot})."]
        for v in self.videos:
            lines.append(f"{v.origin}: {v.frames} frames, {v.cuts} cuts, {v.sampled} sampled.")
        reasons = Counter(s["reason"].split(" (")[0] for s in self.skipped)
        if reasons:
            lines.append(f"Skipped {len(self.skipped)}: " + ", ".join(f"{n} {r}" for r, n in reasons.most_common())
                         + ".")
        return lines


def check_output_folder(out: str, source_root: str | None = None) -> str:
    """The absolute output folder, refused in one sentence unless it is new or empty, writable, and outside the
    source."""
    path = os.path.abspath(os.path.expanduser(out))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"The output path {path} is a file, not a folder.")
    if source_root and (path == source_root or path.startswith(source_root.rstrip(os.sep) + os.sep)):
        raise ValueError(f"The output folder {path} is inside the source folder; choose a folder outside it.")
    if os.path.isdir(path):
        if any(not n.startswith(".") for n in os.listdir(path)):
            raise ValueError(f"The output folder {path} is not empty; choose a new or empty folder.")
        probe = path
    else:
        probe = os.path.dirname(path)
        while not os.path.exists(probe):
            probe = os.path.dirname(probe)
        if not os.path.isdir(probe):
            raise ValueError(f"Cannot make the output folder {path}: {probe} is a file, not a folder.")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"Cannot write into {probe}: permission denied (a read-only folder?).")
    return path


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def build_dataset(options: DatasetOptions | dict, classify: Callable[[Image.Image], ShotGuess] = classify_image,
                  interrogate: Callable[[Image.Image], list[str]] | None = None, allow_download: bool = True,
                  weights_dir: str | None = None, on_progress: Callable[[int, int, str], None] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> BuildResult:
    """Build the dataset `options` describe. `interrogate(photo)` (the host's DeepBooru/CLIP) adds tags;
    `should_stop()` interrupts (nothing is written); `weights_dir` holds annotator weights the host already has
    (else the hub cache). Every refusal is a ValueError with one sentence."""
    from .sketch import Sketcher

    opts = options if isinstance(options, DatasetOptions) else DatasetOptions.from_dict(options)
    root, rels = list_sources(opts.source)
    out = check_output_folder(opts.out, root if os.path.isdir(os.path.expanduser(opts.source)) else None)
    sketcher = None if opts.sketch == "none" else Sketcher(opts.sketch, allow_download=allow_download,
                                                          weights_dir=weights_dir)
    prefix, blacklist = split_tags(opts.prefix), split_tags(opts.blacklist)
    dedupe = Deduper() if opts.dedupe else None
    result = BuildResult(out)
    thumbs: list[tuple[str, Image.Image, str]] = []
    used: set[str] = set()
    items = iter_sources(root, rels, opts.frames_per_cut, opts.max_frames_per_video or None, videos=result.videos)
    try:
        with atomic_group():
            for item in items:
                if should_stop is not None and should_stop():
                    raise ValueError("The dataset build was interrupted; nothing was written.")
                if on_progress is not None:
                    on_progress(item.file, len(rels), item.origin)   # (source files done, files, current)
                if isinstance(item, SourceSkip):
                    result.skipped.append({"origin": item.origin, "reason": item.reason})
                    continue
                entry = _one(item, opts, classify, interrogate, sketcher, prefix, blacklist, dedupe, used, result)
                if entry is not None:
                    image, caption = entry
                    t = image.copy()
                    t.thumbnail((128, 128))
                    thumbs.append((result.images[-1].shot, t, caption))
            if not result.images:
                raise ValueError(_nothing_usable(len(rels), result.skipped))
            atomic_write_text(os.path.join(out, REPORT), json.dumps(result.as_dict(), indent=1) + "\n")
            buf = io.BytesIO()
            contact_sheet(thumbs).save(buf, "GIF")
            atomic_write_bytes(os.path.join(out, SHEET), buf.getvalue())
    except OSError as e:
        raise ValueError(f"Cannot write the dataset into {out}: {e.strerror or e}; nothing was written.") from None
    return result


def _one(item: SourceItem, opts, classify, interrogate, sketcher, prefix, blacklist, dedupe, used, result):
    """Classify, sketch, tag and write one image; returns (image, contact-sheet caption) or None when skipped."""
    if dedupe is not None and not dedupe.is_new(item.image):
        result.skipped.append({"origin": item.origin, "reason": "near-duplicate of an earlier image"})
        return None
    photo = item.image
    if max(photo.size) > opts.max_side:
        photo = photo.copy()
        photo.thumbnail((opts.max_side, opts.max_side), Image.LANCZOS)
    guess = classify(photo)
    if guess.shot_key is None:
        result.skipped.append({"origin": item.origin, "reason": f"no person ({guess.reason})"})
        return None
    if guess.confidence < opts.min_confidence:
        result.skipped.append({"origin": item.origin, "reason": f"unsure shot ({guess.label}, confidence "
                                                                f"{guess.confidence:.2f}: {guess.reason})"})
        return None
    extra = list(interrogate(photo)) if interrogate is not None else []
    tags = caption_tags(guess.shot_key, prefix, extra, blacklist)
    image = sketcher(photo) if sketcher is not None else photo
    folder = f"{opts.repeats}_{guess.shot_key}"
    stem, k = item.stem, 1
    while f"{folder}/{stem}".lower() in used:  # a.png and a.jpg, or the same name in two sub-folders
        k += 1
        stem = f"{item.stem}-{k}"
    used.add(f"{folder}/{stem}".lower())
    rel = f"{folder}/{stem}.png"
    atomic_write_bytes(os.path.join(result.out, folder, stem + ".png"), _png(image))
    atomic_write_text(os.path.join(result.out, folder, stem + ".txt"), ", ".join(tags) + "\n")
    result.images.append(BuiltImage(rel, item.origin, guess.shot_key, guess.confidence, guess.reason, tags))
    return image, f"{guess.shot_key} {guess.confidence:.2f}"


def _nothing_usable(files: int, skipped: list[dict]) -> str:
    reasons = Counter(s["reason"].split(" (")[0] for s in skipped)
    why = ", ".join(f"{n} {r}" for r, n in reasons.most_common()) or "none read"
    return f"None of the {files} source file(s) gave a usable image ({why}); nothing was written."
