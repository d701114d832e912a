"""The detectors this WebUI offers the detailer: one catalog per process, over the host's adetailer model folder
and our own (where downloads go), loading YOLO pickles past the host's safe unpickler."""
import os
import threading
from collections.abc import Sequence
from typing import Any

from modules import devices, paths, sd_samplers, shared

from ..detailer.args import SCRIPT_TITLE, DetailerArgsError, PassArgs, parse_script_args
from ..detection import DetectorCatalog, mediapipe_face
from .patches import trusted_unpickle
from .paths import storyboard_dir
from .settings import max_passes

_catalog: DetectorCatalog | None = None
_catalog_lock = threading.Lock()


def yolo_folders() -> tuple[str, str]:
    """(the host's adetailer folder, ours). Users who run adetailer already have their models in the first."""
    return os.path.join(paths.models_path, "adetailer"), os.path.join(storyboard_dir(), "detectors")


def _yolo_device() -> str:
    if getattr(shared.cmd_opts, "lowvram", False) or getattr(shared.cmd_opts, "medvram", False):
        return "cpu"  # keep VRAM for the UNet, as the host's low-memory modes intend
    return str(devices.device)


def catalog() -> DetectorCatalog:
    """The process's detector catalog; our own detectors folder is created on first use."""
    global _catalog
    with _catalog_lock:
        if _catalog is None:
            host_dir, our_dir = yolo_folders()
            os.makedirs(our_dir, exist_ok=True)
            _catalog = DetectorCatalog(
                yolo_folders=[host_dir], download_dir=our_dir,
                allow_download=not getattr(shared.cmd_opts, "storyboard_no_download", False),
                unpickle_context=trusted_unpickle, device=_yolo_device())
        return _catalog


def detector_names() -> list[str]:
    """Names for the dropdown, without importing mediapipe or ultralytics (they load when a pass first runs)."""
    return list(mediapipe_face.MODELS) + catalog().yolo.names()


def default_detector() -> str:
    return "face_yolov8n.pt" if "face_yolov8n.pt" in catalog().yolo.names() else "mediapipe_face_short"


# -- checks shared by the request validator and process() -------------------------------------------------------
def check_for_host(passes: Sequence[PassArgs]) -> None:
    """What pydantic cannot know: the sampler and the detector must exist here. Raises DetailerArgsError."""
    names = set(detector_names())
    for number, p in enumerate(passes, 1):
        if not p.enabled:
            continue
        where = f"{SCRIPT_TITLE} pass {number}"
        if p.sampler is not None and p.sampler not in sd_samplers.all_samplers_map \
                and p.sampler.lower() not in sd_samplers.samplers_map:
            raise DetailerArgsError(f"{where}: field 'sampler': unknown sampler {p.sampler!r}; see "
                                    f"/sdapi/v1/samplers for the names.")
        if p.detector not in names:
            raise DetailerArgsError(f"{where}: field 'detector': {p.detector!r} is not available here; choose one of "
                                    f"{', '.join(sorted(names))}.")


def detailer_request_error(body: Any, is_img2img: bool) -> str | None:
    """The one-sentence problem with a txt2img/img2img request's detailer arguments, or None."""
    if not isinstance(body, dict):
        return None
    scripts_arg = body.get("alwayson_scripts") or {}
    if not isinstance(scripts_arg, dict):
        return None
    for name, entry in scripts_arg.items():
        if str(name).lower() != SCRIPT_TITLE.lower():
            continue
        if not isinstance(entry, dict) or "args" not in entry:
            return None
        args = entry["args"]
        if not isinstance(args, list):
            return f'{SCRIPT_TITLE}: "args" must be a list: [enabled, {{pass 1}}, ..., detail_only].'
        try:
            run = parse_script_args(args, max_passes(), strict=True)
            if run.detail_only and not is_img2img:
                raise DetailerArgsError(f"{SCRIPT_TITLE}: detail-only mode (the boolean after the passes) is for "
                                        f"img2img; txt2img has no init image to detail.")
            if run.enabled:
                check_for_host(run.passes)
        except DetailerArgsError as e:
            return str(e)
    return None
