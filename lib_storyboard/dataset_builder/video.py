"""Frames from a video: shot cuts found by colour-histogram jumps, then at most N frames from each cut.

OpenCV (already installed for the detectors, pinned beside the host's numpy) decodes; nothing else is needed.
Two passes over the file: the first reads small thumbnails to find cuts, the second decodes only the chosen frames
at full size, so memory stays at one frame whatever the video's length.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

ANALYSIS_FPS = 6.0        # frames per second compared for cuts; a cut shorter than a sixth of a second is a flash
CUT_DISTANCE = 0.45       # Bhattacharyya distance between consecutive HSV histograms that marks a cut
MIN_CUT_SECONDS = 0.5     # shorter segments are merged into the previous one (flashes, dissolves)
BLANK_STD = 6.0           # a frame whose brightness varies less than this is a fade, a slate or black


@dataclass
class VideoFrame:
    index: int            # frame number in the file
    seconds: float
    cut: int              # which cut (shot) it belongs to, from 0
    image: Image.Image


@dataclass
class VideoSample:
    path: str
    fps: float
    frame_count: int      # frames read
    cuts: list[int]       # first frame index of every cut
    frames: list[VideoFrame]
    blank: int = 0        # chosen frames dropped as blank (fades, black)


def _open(path: str):
    import cv2

    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        cap.release()
        raise ValueError(f"Cannot read the video {os.path.basename(path)}: OpenCV cannot open or decode it.")
    return cap


def _histogram(bgr: np.ndarray) -> np.ndarray:
    import cv2

    hsv = cv2.cvtColor(cv2.resize(bgr, (96, 54), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2HSV)
    h = cv2.calcHist([hsv], [0, 1, 2], None, [16, 4, 4], [0, 180, 0, 256, 0, 256])
    return cv2.normalize(h, h).flatten()


def find_cuts(path: str, analysis_fps: float = ANALYSIS_FPS, threshold: float = CUT_DISTANCE,
              min_cut_seconds: float = MIN_CUT_SECONDS) -> tuple[list[int], int, float]:
    """(first frame of every cut, frames in the file, fps). Raises ValueError for a file that is not a video."""
    import cv2

    cap = _open(path)
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        if not 1.0 <= fps <= 1000.0:
            fps = 25.0  # some containers report 0 or nonsense; cut timing only needs a rough value
        step = max(1, round(fps / analysis_fps))
        min_gap = max(1, round(min_cut_seconds * fps))
        cuts, prev, index = [0], None, 0
        while True:
            if index % step == 0:
                ok, frame = cap.read()
                if not ok:
                    break
                hist = _histogram(frame)
                if prev is not None and cv2.compareHist(prev, hist, cv2.HISTCMP_BHATTACHARYYA) > threshold:
                    if index - cuts[-1] >= min_gap:
                        cuts.append(index)
                prev = hist
            elif not cap.grab():
                break
            index += 1
    finally:
        cap.release()
    if index == 0:
        raise ValueError(f"Cannot read the video {os.path.basename(path)}: it has no frames OpenCV can decode.")
    return cuts, index, fps


def choose_frames(cuts: list[int], frame_count: int, per_cut: int) -> list[tuple[int, int]]:
    """(frame index, cut number): `per_cut` frames spread evenly inside each cut, away from its edges (where
    dissolves and motion blur live)."""
    if per_cut < 1:
        raise ValueError(f"Frames per cut must be at least 1, not {per_cut}.")
    out = []
    bounds = cuts + [frame_count]
    for c in range(len(cuts)):
        start, end = bounds[c], bounds[c + 1]
        n = min(per_cut, end - start)
        for k in range(n):
            out.append((start + int((k + 0.5) * (end - start) / n), c))
    return out


def sample_video(path: str, per_cut: int = 1, max_frames: int | None = None) -> VideoSample:
    """At most `per_cut` frames from each cut of `path` (and at most `max_frames` in all), blank frames dropped."""
    import cv2

    cuts, frame_count, fps = find_cuts(path)
    wanted = choose_frames(cuts, frame_count, per_cut)
    if max_frames is not None and len(wanted) > max_frames:  # spread the budget over the whole video
        picks = np.linspace(0, len(wanted) - 1, max_frames).round().astype(int)
        wanted = [wanted[i] for i in sorted(set(picks.tolist()))]
    by_index = dict(wanted)
    frames, blank = [], 0
    cap = _open(path)
    try:
        index, last = 0, max(by_index) if by_index else -1
        while index <= last:
            if index in by_index:
                ok, bgr = cap.read()
                if not ok:
                    break
                if float(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).std()) < BLANK_STD:
                    blank += 1
                else:
                    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    frames.append(VideoFrame(index, index / fps, by_index[index], Image.fromarray(rgb)))
            elif not cap.grab():
                break
            index += 1
    finally:
        cap.release()
    return VideoSample(path, fps, frame_count, cuts, frames, blank)
