"""Detailer timings: detection + mask time per 512² image, and the post-pass time against the bare inpaint calls.

    python benchmarks/bench_detailer.py [--repeat 10] [--inpaint-size 64] [--steps 10] [--device cpu]

Detection uses the real mediapipe models on the astronaut photo and a random-weight YOLOv8n built from its yaml
(same architecture and cost as face_yolov8n). The post-pass uses the tiny SD1.5-architecture inpaint pipeline, so
its absolute time says little; the ratio (whole post-pass / time inside the pipeline calls) is the detailer's own
overhead: detection, masks, crop/resize/paste.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="yolo-cfg-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from PIL import Image  # noqa: E402
from skimage import data  # noqa: E402

from lib_storyboard.detection import DetectorCatalog  # noqa: E402
from lib_storyboard.detailer.args import PassArgs  # noqa: E402
from lib_storyboard.detailer.plan import plan_pass  # noqa: E402


def median_ms(fn, repeat: int) -> float:
    fn()  # warm-up (graph/model load)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def bench_detection(repeat: int, device: str) -> None:
    img = Image.fromarray(data.astronaut())  # 512x512
    folder = tempfile.mkdtemp(prefix="bench-yolo-")
    from ultralytics import YOLO

    YOLO("yolov8n.yaml").save(os.path.join(folder, "yolov8n_random.pt"))
    reg = DetectorCatalog([folder], allow_download=False, device=device)
    print(f"detection + masks on a 512x512 photo (median of {repeat}, {device}, "
          f"{os.environ.get('OMP_NUM_THREADS', 'all')} threads)")
    print(f"{'detector':28s} {'detect ms':>10s} {'masks ms':>9s} {'regions':>8s}")
    for name in ("mediapipe_face_short", "mediapipe_face_full", "mediapipe_face_mesh", "yolov8n_random.pt"):
        args = PassArgs(detector=name)
        dets = reg.detect(name, img, args.confidence)
        t_det = median_ms(lambda: reg.detect(name, img, args.confidence), repeat)
        t_mask = median_ms(lambda: plan_pass(dets, args, 0, "<fs_trg> a woman", "", 1), repeat)
        print(f"{name:28s} {t_det:10.1f} {t_mask:9.1f} {len(dets):8d}")


def bench_post_pass(repeat: int, size: int, steps: int, device: str) -> None:
    import torch

    from lib_storyboard.detailer.diffusers_inpaint import DiffusersInpainter
    from lib_storyboard.detailer.run import catalog_detect, run_detailer
    from lib_storyboard.models.tiny import tiny_components

    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = Image.open(f).convert("RGB")
    two = Image.new("RGB", (1024, 600))
    two.paste(hopper, (0, 0))
    two.paste(Image.fromarray(data.astronaut()), (512, 44))
    inp = DiffusersInpainter.from_components(tiny_components(in_channels=9), steps=steps)
    inp.pipe.to(device)
    detect = catalog_detect(DetectorCatalog(allow_download=False, device=device))
    args = [PassArgs(detector="mediapipe_face_full", inpaint_width=size, inpaint_height=size, denoise=0.5)]
    run_detailer(two, args, detect, inp)  # warm-up
    totals, inside, regions = [], [], 0
    for _ in range(repeat):
        inp.pipe_seconds, inp.calls = 0.0, 0
        t = time.perf_counter()
        res = run_detailer(two, args, detect, inp, main_prompt="<fs_trg> two people", seed=1)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        totals.append(time.perf_counter() - t)
        inside.append(inp.pipe_seconds)
        regions = len(res.jobs)
    total, bare = statistics.median(totals), statistics.median(inside)
    print(f"\npost-pass on a 1024x600 image with {regions} faces, tiny inpaint UNet at {size}², {steps} steps, "
          f"denoise 0.5 ({device}, median of {repeat})")
    print(f"  whole post-pass {1000 * total:.1f} ms, inside the {regions} pipeline calls {1000 * bare:.1f} ms, "
          f"ratio {total / bare:.2f}, detailer overhead {1000 * (total - bare):.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--inpaint-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    bench_detection(a.repeat, a.device)
    bench_post_pass(max(3, a.repeat // 3), a.inpaint_size, a.steps, a.device)


if __name__ == "__main__":
    main()
