"""The shot of a real image or sketch: close-up / medium / full / no person, with a confidence and the reason.

Framing is read off the body the way a script supervisor would: ankles in frame make a full shot; hips in frame
(ankles out) a medium shot; only head and shoulders a close-up, where the shoulders sit low in the frame. Without a
body, the face's share of the frame height decides, and a YOLO person box (when the user has a model file) can
still tell a whole figure from a cut one.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from PIL import Image

from ..detection.mediapipe_face import detect_mediapipe
from ..detection.mediapipe_pose import detect_pose
from ..shots import BY_KEY

WORK_SIDE = 768            # the detectors work at ~256 px; larger inputs only cost time
CU_SHOULDERS = 0.62        # shoulders lower than this (share of frame height) leave room for nothing but the head
CU_FACE = 0.30             # a face box taller than this share of the frame is a close-up whatever else is found
MIN_EXTENT = 0.25          # without a face, a "body" spanning less of the frame is more often a misreading
FACE_ALONE = 0.65          # a photographed face with no body around it needs this detector score (a cheetah's
                           # scored 0.52, people's 0.74 and up); drawn faces score lower, so line art is exempt
POSE_CONF = 0.5
FACE_CONF = 0.5


@dataclass(frozen=True)
class ShotGuess:
    shot_key: str | None   # "cu" | "ms" | "fs" | None (no person)
    confidence: float      # 0..1
    reason: str            # e.g. "face is 41 % of the frame height"

    @property
    def label(self) -> str:
        return BY_KEY[self.shot_key].label if self.shot_key else "no person"

    def as_dict(self) -> dict:
        return {**asdict(self), "label": self.label}


def _pct(v: float) -> str:
    return f"{round(100 * v)} %"


def _margin_confidence(value: float, threshold: float, spread: float = 0.2) -> float:
    """0.5 at the threshold, rising to 1 at `spread` away from it."""
    return round(min(1.0, 0.5 + abs(value - threshold) / (2 * spread)), 2)


def _face_share(image: Image.Image) -> tuple[float, float] | None:
    """(height share of the largest face, its score), trying the short-range model then the full-range one."""
    for model in ("mediapipe_face_short", "mediapipe_face_full"):
        dets = detect_mediapipe(model, image, confidence=FACE_CONF)
        if len(dets):
            i = max(range(len(dets)), key=lambda k: dets.boxes[k][3] - dets.boxes[k][1])
            return (dets.boxes[i][3] - dets.boxes[i][1]) / image.height, dets.confidences[i]
    return None


def _yolo_person(image: Image.Image, yolo_model, device: str | None) -> ShotGuess | None:
    from ..detection.yolo import predict

    dets = predict(yolo_model, image, confidence=0.4, classes=["person"], device=device)
    if not len(dets):
        return None
    i = max(range(len(dets)), key=lambda k: dets.boxes[k][3] - dets.boxes[k][1])
    x1, y1, x2, y2 = dets.boxes[i]
    conf = round(0.6 * dets.confidences[i], 2)  # a box says less about framing than landmarks do
    if y2 < 0.97 * image.height and y1 > 0.01 * image.height:
        return ShotGuess("fs", conf, f"a whole person is in frame ({_pct((y2 - y1) / image.height)} of its height)")
    return ShotGuess("ms", conf, "a person is cut by the frame edge and no body landmarks were found")


def looks_like_line_art(image: Image.Image) -> bool:
    """Dark lines on light paper: almost no colour and mostly near-white pixels."""
    import numpy as np

    hsv = np.asarray(image.convert("HSV"))
    return float(np.mean(hsv[..., 1] > 40)) < 0.05 and float(np.mean(hsv[..., 2] > 200)) > 0.6


# Stroke widening tried in turn on line art, first answer wins: the detectors were trained on photos and find more
# in solid shapes, but which width suits a drawing depends on its scale. On the labelled set's sketches this took
# recognition from 57 % (line art) and 43 % (Canny) with one fixed width to about two thirds.
LINE_ART_WIDTHS = ((5, 2.5), (9, 4.0), (3, 1.0), (1, 0.0))   # (erosion kernel px, blur sigma)


def _thicken(image: Image.Image, kernel: int, sigma: float) -> Image.Image:
    import cv2
    import numpy as np

    grey = np.asarray(image.convert("L"))
    if kernel > 1:
        grey = cv2.erode(grey, np.ones((kernel, kernel), np.uint8))
    if sigma > 0:
        grey = cv2.GaussianBlur(grey, (0, 0), sigma)
    return Image.fromarray(grey).convert("RGB")


def classify_image(image: Image.Image, yolo_model=None, device: str | None = None) -> ShotGuess:
    """The shot of `image` (any size, RGB or not). `yolo_model`: an optional loaded ultralytics person model."""
    im = image.convert("RGB")
    if max(im.size) > WORK_SIDE:
        im.thumbnail((WORK_SIDE, WORK_SIDE), Image.BILINEAR)
    if not looks_like_line_art(im):
        return _classify(im, yolo_model, device, FACE_ALONE)
    guess = None
    for kernel, sigma in LINE_ART_WIDTHS:
        guess = _classify(_thicken(im, kernel, sigma), yolo_model, device, 0.0)
        if guess.shot_key is not None:
            break
    return ShotGuess(guess.shot_key, guess.confidence, guess.reason + " (read as line art)")


def _classify(im: Image.Image, yolo_model, device, face_alone: float) -> ShotGuess:
    pose = detect_pose(im, confidence=POSE_CONF)
    face = _face_share(im)
    if pose is not None and face is None and pose.extent() < MIN_EXTENT:
        pose = None  # landmarks squeezed into a sliver of the frame: seen on machines and furniture, not people
    if pose is None and face is not None and face[1] < face_alone:
        face = None  # a weak face and no body: the detector's guess on a cheetah, not a person
    if face and face[0] >= CU_FACE:
        conf = round(min(1.0, 0.6 + 2 * (face[0] - CU_FACE)), 2)  # 0.6 at the threshold, sure at 50 %
        return ShotGuess("cu", conf, f"face is {_pct(face[0])} of the frame height")
    if pose is not None:
        # Both ankles, on average: mediapipe often invents one leg below a body cut at the hips.
        ankles = pose.visibility("ankles")
        if ankles >= 0.5:
            feet = pose.part("ankles")
            return ShotGuess("fs", round(ankles, 2), f"ankles visible at {_pct(feet.y)} of the frame height")
        hips = pose.part("hips")
        if hips is not None:
            return ShotGuess("ms", round(hips.visibility, 2),
                             f"hips visible at {_pct(hips.y)} of the frame height, ankles out of frame")
        shoulders = pose.part("shoulders")
        if shoulders is not None:
            conf = _margin_confidence(shoulders.y, CU_SHOULDERS)
            if shoulders.y >= CU_SHOULDERS:
                return ShotGuess("cu", conf, f"shoulders at {_pct(shoulders.y)} of the frame height, no torso below")
            return ShotGuess("ms", conf, f"shoulders at {_pct(shoulders.y)} of the frame height with the torso below "
                                         f"them, hips out of frame")
        if face is not None or pose.part("nose") is not None:
            return ShotGuess("cu", 0.6, "only the head is in frame")
    if face is not None and yolo_model is None:
        return ShotGuess("ms", round(0.5 * face[1], 2), f"face is {_pct(face[0])} of the frame height (under "
                                                       f"{_pct(CU_FACE)}) and no body was found")
    if yolo_model is not None:
        guess = _yolo_person(im, yolo_model, device)
        if guess is not None:
            return guess
    return ShotGuess(None, 0.9, "no person found (no body, face or person box)")
