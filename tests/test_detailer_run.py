"""The region plan and the runner, end to end: real mediapipe detections on real photos, a tiny real-architecture
SD1.5 inpaint pipeline (random weights) redrawing each region."""
import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image
from skimage import data

from lib_storyboard.detection import DetectorCatalog
from lib_storyboard.detection.result import Detections, box_mask
from lib_storyboard.detailer.args import PassArgs
from lib_storyboard.detailer.diffusers_inpaint import DiffusersInpainter, strip_extra_networks
from lib_storyboard.detailer.plan import crop_and_size, expand_to_aspect, plan_pass, region_seed
from lib_storyboard.detailer.run import catalog_detect, run_detailer
from lib_storyboard.models.tiny import tiny_components

MAIN = "<fs_trg> eye level, a woman in a space suit <lora:sb_style:0.8>"
SMALL = dict(inpaint_width=64, inpaint_height=64)  # the tiny UNet's own resolution keeps the test fast


@pytest.fixture(scope="module")
def inpainter():
    return DiffusersInpainter.from_components(tiny_components(seed=1, in_channels=9), steps=4)


@pytest.fixture(scope="module")
def detect():
    return catalog_detect(DetectorCatalog(allow_download=False))


@pytest.fixture(scope="module")
def astronaut():
    return Image.fromarray(data.astronaut())


@pytest.fixture(scope="module")
def two_faces(astronaut):
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = Image.open(f).convert("RGB")
    img = Image.new("RGB", (1024, 600), (40, 40, 40))
    img.paste(hopper, (0, 0))
    img.paste(astronaut, (512, 44))
    return img


def changed(a, b):
    return (np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).sum(-1) > 0)


def inside(mask, box):
    out = np.zeros_like(mask)
    out[box[1]:box[3], box[0]:box[2]] = True
    return out


def synthetic(boxes, size=(512, 512)):
    return Detections(size, [tuple(map(float, b)) for b in boxes], [box_mask(b, size) for b in boxes],
                      [0.9] * len(boxes), ["face"] * len(boxes))


# --- the plan: geometry, seeds, prompts ----------------------------------------------------------------------

def test_crop_box_is_padded_blurred_bbox_widened_to_the_inpaint_aspect():
    mask = box_mask((100, 100, 140, 150), (512, 512))
    box, size = crop_and_size(mask, PassArgs(mask_blur=0, padding=10, **SMALL))
    assert box == (85, 90, 155, 160) and size == (64, 64)
    box, size = crop_and_size(mask, PassArgs(mask_blur=0, padding=10, match_box=True))
    assert box == (90, 90, 150, 160) and size == (472, 552)   # 60:70 at the area of 512x512, multiples of 8
    box, size = crop_and_size(mask, PassArgs(inpaint_only_masked=False))
    assert box == (0, 0, 512, 512) and size == (512, 512)
    # the blur widens the box by the feather before padding
    blurred_box, _ = crop_and_size(mask, PassArgs(mask_blur=4, padding=10, match_box=True))
    assert blurred_box[0] < 90 and blurred_box[3] > 160


def test_expand_to_aspect_stays_inside_the_image():
    assert expand_to_aspect((0, 0, 20, 40), 1.0, (512, 512)) == (0, 0, 40, 40)
    assert expand_to_aspect((490, 0, 512, 40), 1.0, (512, 512)) == (472, 0, 512, 40)
    assert expand_to_aspect((10, 10, 50, 20), 2.0, (100, 100)) == (10, 5, 50, 25)
    assert expand_to_aspect((0, 0, 30, 100), 1.0, (30, 100)) == (0, 0, 30, 100)  # cannot widen: unchanged


def test_seeds_are_derived_from_the_image_seed():
    assert region_seed(5, 0, 0) == 5 and region_seed(5, 0, 2) == 7 and region_seed(5, 1, 2) == 1007
    assert region_seed(2 ** 32 - 1, 0, 1) == 0


def test_plan_orders_prompts_and_skips():
    dets = synthetic([(300, 100, 340, 140), (50, 100, 90, 140), (170, 100, 210, 140)])
    args = PassArgs(prompt="left [SEP] [SKIP] [SEP] [PROMPT], right", negative_prompt="bad", **SMALL)
    jobs = plan_pass(dets, args, 1, MAIN, "ugly", seed=10)
    assert [j.region_index for j in jobs] == [0, 2]
    assert [j.seed for j in jobs] == [1010, 1012]
    assert jobs[0].prompt == "<cu_trg> left <lora:sb_style:0.8>"
    assert jobs[1].prompt == "<cu_trg> eye level, a woman in a space suit <lora:sb_style:0.8>, right"
    assert [j.negative_prompt for j in jobs] == ["bad", "bad"]
    assert jobs[0].crop_box[0] < 50 < jobs[1].crop_box[0]  # left → right
    assert (jobs[0].denoise, jobs[0].steps, jobs[0].only_masked, jobs[0].kind) == (0.4, None, True, "face")
    assert plan_pass(dets, PassArgs(enabled=False), 0) == []
    assert len(plan_pass(dets, PassArgs(merge="merge", **SMALL), 0)) == 1


# --- running it ----------------------------------------------------------------------------------------------

def test_face_region_is_redrawn_and_nothing_else(astronaut, detect, inpainter):
    before = astronaut.tobytes()
    calls = []
    res = run_detailer(astronaut, [PassArgs(detector="mediapipe_face_short", **SMALL)], detect, inpainter,
                       main_prompt=MAIN, main_negative="blurry", seed=42,
                       on_region=lambda i, n: calls.append((i, n)))
    assert astronaut.tobytes() == before  # the input is never modified
    assert len(res.jobs) == 1 and not res.stopped and calls == [(1, 1)]
    job = res.jobs[0]
    assert job.prompt == "<cu_trg> eye level, a woman in a space suit <lora:sb_style:0.8>"
    assert job.seed == 42 and job.inpaint_size == (64, 64)
    x1, y1, x2, y2 = job.crop_box
    assert x1 < 177 and y1 < 82 and x2 > 272 and y2 > 177  # the face box (offline.md) lies inside the crop
    diff = changed(astronaut, res.image)
    crop = inside(diff, job.crop_box)
    assert not (diff & ~crop).any()                             # outside the padded crop: identical pixels
    assert not (diff & (np.asarray(job.paste_mask()) == 0)).any()  # outside the feathered mask too
    face = diff[100:160, 195:255]
    assert face.mean() > 0.9                                    # inside the face: redrawn
    assert len(res.previews) == 1 and res.previews[0].size == astronaut.size


def test_photo_without_a_face_is_returned_untouched(detect, inpainter):
    coffee = Image.fromarray(data.coffee())
    before, calls = coffee.tobytes(), inpainter.calls
    res = run_detailer(coffee, [PassArgs(detector="mediapipe_face_full"), PassArgs(detector="mediapipe_face_mesh")],
                       detect, inpainter, main_prompt=MAIN)
    assert res.image is coffee and res.image.tobytes() == before
    assert res.jobs == [] and res.previews == [] and inpainter.calls == calls


def test_each_face_gets_its_own_prompt_and_the_regions_chain(two_faces, detect, inpainter):
    seen = []

    def recording(job, image):
        seen.append(image)
        out = inpainter(job, image)
        seen.append(out)
        return out

    args = PassArgs(detector="mediapipe_face_full", prompt="old woman [SEP] astronaut", **SMALL)
    res = run_detailer(two_faces, [args], detect, recording, main_prompt=MAIN, seed=7)
    assert [j.prompt for j in res.jobs] == ["<cu_trg> old woman <lora:sb_style:0.8>",
                                            "<cu_trg> astronaut <lora:sb_style:0.8>"]
    assert res.jobs[0].crop_box[2] <= 512 <= res.jobs[1].crop_box[0]  # Grace Hopper is on the left
    assert [j.seed for j in res.jobs] == [7, 8]
    assert seen[0] is two_faces and seen[2] is seen[1]   # the second region starts from the first's output
    diff = changed(two_faces, res.image)
    assert diff[200:300, 230:300].mean() > 0.9 and diff[140:200, 710:770].mean() > 0.9
    union = inside(diff, res.jobs[0].crop_box) | inside(diff, res.jobs[1].crop_box)
    assert not (diff & ~union).any()
    # area order puts the larger face (Grace Hopper's) first as well; top-k 1 keeps only it
    res = run_detailer(two_faces, [PassArgs(detector="mediapipe_face_full", top_k=1, **SMALL)], detect,
                       inpainter, main_prompt="portrait")
    assert len(res.jobs) == 1 and res.jobs[0].crop_box[2] <= 512


def test_stop_is_honoured_between_regions(two_faces, detect, inpainter):
    progress = []
    res = run_detailer(two_faces, [PassArgs(detector="mediapipe_face_full", **SMALL)], detect, inpainter,
                       should_stop=lambda: len(progress) >= 1, on_region=lambda i, n: progress.append((i, n)))
    assert res.stopped and len(res.jobs) == 1 and progress == [(1, 2)]
    res = run_detailer(two_faces, [PassArgs(detector="mediapipe_face_full", **SMALL)], detect, inpainter,
                       should_stop=lambda: True)
    assert res.stopped and res.jobs == [] and res.image is two_faces


def test_second_pass_detects_on_the_first_pass_output(astronaut, detect, inpainter):
    images, planned = [], []

    def recording_detect(args, image):
        images.append(image)
        return detect(args, image)

    # pass 1 redraws everything but the (grown) face, so that pass 2 can still find the face in its output
    passes = [PassArgs(detector="mediapipe_face_short", denoise=0.2, merge="merge_invert", dilate_erode=24, **SMALL),
              PassArgs(enabled=False),
              PassArgs(detector="mediapipe_face_full", prompt="[PROMPT], freckles", steps=2, cfg_scale=3.0,
                       sampler="Euler a", **SMALL)]
    res = run_detailer(astronaut, passes, recording_detect, inpainter, main_prompt=MAIN, seed=3,
                       on_pass=lambda p, jobs: planned.append((p, len(jobs))))
    assert images[0] is astronaut and images[1] is not astronaut and len(images) == 2
    assert planned == [(0, 1), (2, 1)]
    background = changed(astronaut, images[1])
    assert background[400:, :].mean() > 0.9 and not background[110:150, 205:245].any()
    assert [j.pass_index for j in res.jobs] == [0, 2] and res.jobs[1].seed == 2003
    assert res.jobs[1].prompt.endswith(", freckles") and res.jobs[1].sampler == "Euler a"


def test_four_channel_unet_inpaints_too(astronaut, detect):
    four = DiffusersInpainter.from_components(tiny_components(seed=2, in_channels=4), steps=3)
    res = run_detailer(astronaut, [PassArgs(detector="mediapipe_face_short", denoise=0.8, **SMALL)], detect, four)
    diff = changed(astronaut, res.image)
    assert diff[100:160, 195:255].mean() > 0.9 and not (diff & ~inside(diff, res.jobs[0].crop_box)).any()


def test_diffusers_inpainter_refuses_unknown_samplers_and_strips_tags(astronaut, inpainter):
    job = plan_pass(synthetic([(100, 100, 140, 140)]), PassArgs(sampler="Heun++ 9", **SMALL), 0)[0]
    with pytest.raises(ValueError, match="Sampler 'Heun\\+\\+ 9' has no diffusers equivalent"):
        inpainter(job, astronaut)
    assert strip_extra_networks("<cu_trg> a  face <lora:x:0.5> <hypernet:y:1>") == "<cu_trg> a face"
