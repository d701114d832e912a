"""Procedural OpenPose-format poses at each shot's framing, and the reference-photo extractor's offline refusal."""
import numpy as np
import pytest

from lib_storyboard.composition import COMPOSITIONS, POSES, frame_figures, pose_image
from lib_storyboard.composition.extract import extract_pose, load_openpose
from lib_storyboard.composition.poses import _HEAD, HEAD_ABOVE_NOSE
from lib_storyboard.composition.skeleton import COLOURS, INDEX, LIMB_STRENGTH
from lib_storyboard.framing.classify import CU_SHOULDERS

SIZES = [(512, 512), (768, 512), (384, 640), (64, 64)]


def _y(fig, name, h):
    p = fig[INDEX[name]]
    return None if p is None else p[1] / h


def _head_top(fig, h):
    """The top of the head (share of the frame height): above the nose by HEAD_ABOVE_NOSE body units, the body's
    scale in pixels read off the nose-to-neck distance."""
    nose, neck = fig[INDEX["nose"]][1], fig[INDEX["neck"]][1]
    units = _HEAD["neck"][1] - _HEAD["nose"][1]
    return (nose - HEAD_ABOVE_NOSE * (neck - nose) / units) / h


@pytest.mark.parametrize("pose", list(POSES))
@pytest.mark.parametrize("size", SIZES)
def test_close_up_head_on_top_shoulders_near_the_bottom(pose, size):
    w, h = size
    figs = frame_figures(pose, "cu", w, h)
    assert all(fig[INDEX["nose"]] is not None for fig in figs)
    assert min(_head_top(f, h) for f in figs) <= 0.1
    if pose != "two":     # one person: the head and shoulders fill the frame
        fig = figs[0]
        assert all(fig[INDEX[k]] is None for k in ("r_hip", "l_hip", "r_knee", "l_knee", "r_ankle", "l_ankle"))
        neck = _y(fig, "neck", h)
        assert 0.72 <= neck <= 0.9 and neck >= CU_SHOULDERS     # the classifier's close-up rule
        assert 0.0 <= _head_top(fig, h) <= 0.1                   # the head top just under the frame top


@pytest.mark.parametrize("pose", list(POSES))
@pytest.mark.parametrize("size", SIZES)
def test_medium_shot_cuts_at_the_waist(pose, size):
    w, h = size
    figs = frame_figures(pose, "ms", w, h)
    assert 0.0 <= min(_head_top(f, h) for f in figs) <= 0.1
    for fig in figs:
        hips = [_y(fig, k, h) for k in ("r_hip", "l_hip")]
        assert all(y is not None and y < 1.0 for y in hips)
        assert all(fig[INDEX[k]] is None for k in ("r_ankle", "l_ankle"))
    if pose != "two":
        assert min(_y(figs[0], k, h) for k in ("r_hip", "l_hip")) >= 0.85


@pytest.mark.parametrize("pose", list(POSES))
@pytest.mark.parametrize("size", SIZES)
def test_full_shot_has_the_whole_body_with_a_margin(pose, size):
    w, h = size
    figs = frame_figures(pose, "fs", w, h)
    pts = [p for fig in figs for p in fig]
    assert all(p is not None for p in pts)                     # every keypoint, both people, in frame
    xs, ys = [p[0] / w for p in pts], [p[1] / h for p in pts]
    assert min(xs) >= 0.05 and max(xs) <= 0.95
    assert min(ys) >= 0.08 and max(ys) <= 0.92                 # margins above and below, ankles inside
    assert all(_head_top(f, h) >= 0.05 for f in figs)
    ankles = [_y(f, k, h) for f in figs for k in ("r_ankle", "l_ankle")]
    assert max(ankles) >= 0.6                                  # the body spans the frame, not a speck


def test_shots_order_the_body_scale():
    """The same pose fills more of the frame from fs to ms to cu."""
    def shoulder_width(shot):
        fig = frame_figures("standing", shot, 512, 512)[0]
        a, b = fig[INDEX["r_shoulder"]], fig[INDEX["l_shoulder"]]
        return b[0] - a[0]
    assert shoulder_width("cu") > 1.5 * shoulder_width("ms") > 1.5 * 1.2 * shoulder_width("fs")


@pytest.mark.parametrize("size", SIZES)
def test_images_are_openpose_format_at_the_right_size(size):
    for pose in POSES:
        for shot in ("cu", "ms", "fs"):
            im = pose_image(pose, shot, *size)
            assert im.size == size and im.mode == "RGB"
            a = np.asarray(im)
            assert (a.reshape(-1, 3) == 0).all(axis=1).mean() > 0.6      # black background
    a = np.asarray(pose_image("standing", "fs", 512, 512))
    fig = frame_figures("standing", "fs", 512, 512)[0]
    for k in ("nose", "neck", "r_wrist", "l_ankle"):                     # each joint in its own colour
        x, y = (round(v) for v in fig[INDEX[k]])
        assert tuple(a[y, x]) == COLOURS[INDEX[k]]
    # the middle of the neck→right-hip limb carries limb 6's colour at 60 %
    (x0, y0), (x1, y1) = fig[INDEX["neck"]], fig[INDEX["r_hip"]]
    mid = a[round((y0 + y1) / 2), round((x0 + x1) / 2)]
    assert tuple(mid) == tuple(round(c * LIMB_STRENGTH) for c in COLOURS[6])


def test_two_people_are_two_skeletons_side_by_side():
    for shot in ("cu", "ms", "fs"):
        figs = frame_figures("two", shot, 768, 512)
        assert len(figs) == 2 and figs[0][INDEX["neck"]][0] < 384 < figs[1][INDEX["neck"]][0]
    # a close-up of two is as tight as both heads allow: larger heads than the medium shot's
    span = {s: frame_figures("two", s, 512, 512)[0][INDEX["neck"]][1] - frame_figures("two", s, 512, 512)[0][
        INDEX["nose"]][1] for s in ("cu", "ms", "fs")}
    assert span["cu"] > span["ms"] > span["fs"]


def test_bad_requests_are_one_sentence():
    assert COMPOSITIONS[0] == "none" and set(COMPOSITIONS[1:]) == set(POSES)
    with pytest.raises(ValueError, match=r"^Unknown pose 'dancing'; choose one of standing, sitting, walking, two\.$"):
        pose_image("dancing", "cu", 64, 64)
    with pytest.raises(ValueError, match=r"^Unknown shot 'xl'"):
        pose_image("standing", "xl", 64, 64)
    with pytest.raises(ValueError, match=r"at least 8 x 8"):
        pose_image("standing", "cu", 4, 64)


def test_reference_extraction_refuses_offline_in_one_sentence(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError) as e:
        load_openpose(cache_dir=str(tmp_path))
    msg = str(e.value)
    assert msg == ("The pose detector needs OpenPose weights from lllyasviel/Annotators, which are not in the hub "
                   "cache, and downloads are off; use a drawn pose instead, or allow downloads once.")
    with pytest.raises(ValueError, match=r"^The pose detector needs OpenPose weights .*downloads are off"):
        extract_pose(Image.new("RGB", (64, 64)), allow_download=False, cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"^The pose detector weights folder .* does not exist\.$"):
        load_openpose(weights_dir=str(tmp_path / "nope"))
    assert not list(tmp_path.iterdir())       # nothing was written into the cache


def _annotator_cache(root) -> str:
    """A Hugging Face hub cache holding lllyasviel/Annotators' three OpenPose files with random weights of the
    detector's own architecture (saved without the top module name, as the published files are)."""
    import torch
    from controlnet_aux.open_pose.body import bodypose_model
    from controlnet_aux.open_pose.face import FaceNet
    from controlnet_aux.open_pose.hand import handpose_model

    rev = "0" * 40
    repo = root / "models--lllyasviel--Annotators"
    snap = repo / "snapshots" / rev
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev)
    torch.manual_seed(0)
    for name, net, strip in (("body_pose_model.pth", bodypose_model(), True),
                             ("hand_pose_model.pth", handpose_model(), True), ("facenet.pth", FaceNet(), False)):
        state = net.state_dict()
        torch.save({k.split(".", 1)[1] if strip else k: v for k, v in state.items()}, snap / name)
    return str(root)


def test_reference_extraction_reads_the_hub_cache_offline(tmp_path, monkeypatch):
    """The real detector, loaded through controlnet-aux's hub download from local files only, draws an OpenPose
    map of the requested size from a real photo (random weights: which keypoints it finds is not the point)."""
    from PIL import Image
    from skimage import data

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = _annotator_cache(tmp_path / "hub")
    detector = load_openpose(allow_download=False, cache_dir=cache)
    photo = Image.fromarray(data.astronaut()).resize((192, 192))
    pose = extract_pose(photo, (96, 128), detector=detector)
    assert pose.mode == "RGB" and pose.size == (96, 128)
    again = extract_pose(photo, (96, 128), allow_download=False, cache_dir=cache)
    assert np.array_equal(np.asarray(pose), np.asarray(again))     # the same weights, the same map
