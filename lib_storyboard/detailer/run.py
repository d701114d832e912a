"""Run the detailer on one image: for each pass, detect on the current image, plan the regions, inpaint them in
order through the caller's `inpaint(job, image) -> image`. Each region's output feeds the next region and the
next pass's detection. Stop requests are honoured between regions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from collections.abc import Callable, Sequence

from PIL import Image

from ..detection.result import Detections, draw_preview
from .args import PassArgs
from .plan import RegionJob, plan_pass

if TYPE_CHECKING:
    from ..detection.catalog import DetectorCatalog

Detect = Callable[[PassArgs, Image.Image], Detections]
Inpaint = Callable[[RegionJob, Image.Image], Image.Image]


@dataclass
class DetailerResult:
    image: Image.Image                       # the input object itself when nothing was redrawn
    jobs: list[RegionJob] = field(default_factory=list)       # the jobs that ran, in order
    # per pass with regions: every detection's box and the masks actually redrawn, over the image it ran on
    previews: list[Image.Image] = field(default_factory=list)
    stopped: bool = False


def catalog_detect(catalog: DetectorCatalog) -> Detect:
    """A `detect` callable backed by a `detection.DetectorCatalog`."""
    def detect(args: PassArgs, image: Image.Image) -> Detections:
        return catalog.detect(args.detector, image, args.confidence, args.class_list())
    return detect


def _mask_preview(image: Image.Image, jobs: Sequence[RegionJob], dets: Detections) -> Image.Image:
    return draw_preview(image, dets.boxes, dets.labels, dets.confidences, [j.mask for j in jobs])


def run_detailer(image: Image.Image, passes: Sequence[PassArgs], detect: Detect, inpaint: Inpaint, *,
                 main_prompt: str = "", main_negative: str = "", seed: int = 0,
                 should_stop: Callable[[], bool] | None = None,
                 on_region: Callable[[int, int], None] | None = None,
                 on_pass: Callable[[int, list[RegionJob]], None] | None = None) -> DetailerResult:
    """Detail `image` with every enabled pass.

    `on_pass(pass_index, jobs)` is called once a pass is planned (the host adds len(jobs) to its job count);
    `on_region(done, planned)` after each region, counting over the whole run. `should_stop()` is checked
    before each detection and each region; when it answers True the image as it is so far is returned.
    """
    result = DetailerResult(image)
    current = image
    planned = 0
    for pass_index, args in enumerate(passes):
        if not args.enabled:
            continue
        if should_stop is not None and should_stop():
            result.stopped = True
            break
        dets = detect(args, current)
        jobs = plan_pass(dets, args, pass_index, main_prompt, main_negative, seed)
        if on_pass is not None:
            on_pass(pass_index, jobs)
        if not jobs:
            continue
        result.previews.append(_mask_preview(current, jobs, dets))
        planned += len(jobs)
        for job in jobs:
            if should_stop is not None and should_stop():
                result.stopped = True
                break
            out = inpaint(job, current)
            if out.size != current.size:
                raise ValueError(f"The inpaint step returned a {out.size[0]}x{out.size[1]} image for a "
                                 f"{current.size[0]}x{current.size[1]} input.")
            current = out
            result.jobs.append(job)
            if on_region is not None:
                on_region(len(result.jobs), planned)
        if result.stopped:
            break
    result.image = current
    return result
