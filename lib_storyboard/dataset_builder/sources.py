"""What a dataset is built from: a folder of photos or film stills, video files, or a folder holding both.

Images are decoded by the dataset's safe loader (one sentence per unusable file); videos give frames from each
cut (video.py). Items come one at a time, so a folder of a thousand 4K stills never sits in memory at once.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image

from ..dataset.images import MAX_PIXELS, BadImage, load_rgb
from ..dataset.scan import IMAGE_EXTS
from .video import sample_video

VIDEO_EXTS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg")


@dataclass
class SourceItem:
    stem: str              # file stem for the dataset, unique per source file and frame
    origin: str            # where it came from, for the report: "stills/a.jpg" or "clip.mp4 @ 12.3 s (cut 4)"
    image: Image.Image
    file: int = 0          # index of its source file in the list (for progress)


@dataclass
class SourceSkip:
    origin: str
    reason: str            # a short phrase
    file: int = 0


@dataclass
class VideoSummary:
    origin: str
    frames: int
    cuts: int
    sampled: int
    blank: int


def _stem(rel: str) -> str:
    base = os.path.splitext(rel)[0].replace("/", "_")
    return re.sub(r"[^A-Za-z0-9_-]+", "-", base).strip("-_") or "image"


def list_sources(source: str) -> tuple[str, list[str]]:
    """(root folder, sorted rel paths of the images and videos in `source`, a folder or one file). Raises
    ValueError with one sentence when there is nothing to read."""
    if not source or not str(source).strip():
        raise ValueError("No source folder or video was given.")
    path = os.path.abspath(os.path.expanduser(str(source)))
    if not os.path.exists(path):
        raise ValueError(f"The source {path} does not exist.")
    wanted = IMAGE_EXTS + VIDEO_EXTS
    if os.path.isfile(path):
        if not path.lower().endswith(wanted):
            raise ValueError(f"The source {path} is neither an image ({', '.join(IMAGE_EXTS)}) nor a video "
                             f"({', '.join(VIDEO_EXTS)}).")
        return os.path.dirname(path), [os.path.basename(path)]
    found = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d.lower() != "__macosx")
        rel_dir = os.path.relpath(dirpath, path).replace(os.sep, "/")
        for name in filenames:
            if not name.startswith(".") and name.lower().endswith(wanted):
                found.append(name if rel_dir == "." else f"{rel_dir}/{name}")
    if not found:
        raise ValueError(f"The source folder {path} holds no images ({', '.join(IMAGE_EXTS)}) or videos "
                         f"({', '.join(VIDEO_EXTS)}).")
    return path, sorted(found)


def iter_sources(root: str, rels: list[str], frames_per_cut: int = 1, max_frames_per_video: int | None = None,
                 max_pixels: int = MAX_PIXELS, min_side: int = 64,
                 videos: list[VideoSummary] | None = None) -> Iterator[SourceItem | SourceSkip]:
    """Every usable image or video frame of `rels` under `root`, and a SourceSkip for each one that is not.
    A summary of each video read is appended to `videos` when given."""
    for n, rel in enumerate(rels):
        path = os.path.join(root, *rel.split("/"))
        if rel.lower().endswith(VIDEO_EXTS):
            try:
                sample = sample_video(path, frames_per_cut, max_frames_per_video)
            except ValueError as e:
                yield SourceSkip(rel, str(e).split(": ", 1)[-1].rstrip("."), n)
                continue
            if videos is not None:
                videos.append(VideoSummary(rel, sample.frame_count, len(sample.cuts), len(sample.frames),
                                           sample.blank))
            if sample.blank:
                yield SourceSkip(rel, f"{sample.blank} blank frame(s) (fades, black) left out", n)
            for f in sample.frames:
                w, h = f.image.size
                if w * h > max_pixels:
                    yield SourceSkip(f"{rel} @ {f.seconds:.1f} s", f"frame too large ({w}×{h} pixels)", n)
                    continue
                yield SourceItem(f"{_stem(rel)}_f{f.index:06d}", f"{rel} @ {f.seconds:.1f} s (cut {f.cut + 1})",
                                 f.image, n)
            continue
        try:
            image = load_rgb(path, min_side=min_side, max_pixels=max_pixels)
        except BadImage as e:
            yield SourceSkip(rel, e.reason, n)
            continue
        yield SourceItem(_stem(rel), rel, image, n)
