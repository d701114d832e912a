"""Face detection with the models that ship inside the mediapipe 0.10.x wheel (`mediapipe.solutions`), offline.

Short range is tuned for faces filling much of the frame, full range for smaller, farther faces; the mesh gives
468 landmarks per face, whose convex hull is a tighter mask than a box. Every detector is closed (`with`) right
after use: mediapipe graphs left open print errors at interpreter exit.
"""
from __future__ import annotations


import numpy as np
from PIL import Image

from .result import Detections, box_mask, clamp_box, draw_preview

MODELS: dict[str, str] = {
    "mediapipe_face_short": "face detection, short range (faces within ~2 m, large in frame)",
    "mediapipe_face_full": "face detection, full range (smaller, farther faces)",
    "mediapipe_face_mesh": "face mesh: a convex-hull mask of 468 landmarks per face",
}
MAX_FACES = 20


def _rgb(image: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def _face_boxes(arr: np.ndarray, model_selection: int, confidence: float) -> Detections:
    import mediapipe as mp

    h, w = arr.shape[:2]
    boxes, masks, scores = [], [], []
    with mp.solutions.face_detection.FaceDetection(
            model_selection=model_selection, min_detection_confidence=confidence) as det:
        result = det.process(arr)
    for d in result.detections or []:
        rb = d.location_data.relative_bounding_box
        box = clamp_box((rb.xmin * w, rb.ymin * h, (rb.xmin + rb.width) * w, (rb.ymin + rb.height) * h), (w, h))
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            continue  # a face entirely outside the frame after clamping
        boxes.append(box)
        masks.append(box_mask(box, (w, h)))
        scores.append(float(d.score[0]))
    return Detections((w, h), boxes, masks, scores, ["face"] * len(boxes))


def _face_mesh(arr: np.ndarray, confidence: float) -> Detections:
    import cv2
    import mediapipe as mp

    h, w = arr.shape[:2]
    boxes, masks = [], []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=MAX_FACES,
                                         refine_landmarks=False, min_detection_confidence=confidence) as mesh:
        result = mesh.process(arr)
    for face in result.multi_face_landmarks or []:
        pts = np.array([(p.x * w, p.y * h) for p in face.landmark], np.float32)
        hull = cv2.convexHull(np.round(pts).astype(np.int32))
        m = np.zeros((h, w), np.uint8)
        cv2.fillConvexPoly(m, hull, 255)
        ys, xs = np.nonzero(m)
        if len(xs) == 0:
            continue
        boxes.append((float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)))
        masks.append(Image.fromarray(m, "L"))
    # The mesh reports no per-face score; the threshold was applied inside mediapipe.
    return Detections((w, h), boxes, masks, [1.0] * len(boxes), ["face"] * len(boxes))


def detect_mediapipe(model: str, image: Image.Image, confidence: float = 0.3) -> Detections:
    """Run one of `MODELS` on `image`; boxes are clamped to the image, masks are boxes (or hulls for the mesh)."""
    if model not in MODELS:
        raise ValueError(f"Unknown mediapipe model {model!r}; choose one of {', '.join(MODELS)}.")
    arr = _rgb(image)
    if model == "mediapipe_face_mesh":
        dets = _face_mesh(arr, confidence)
    else:
        dets = _face_boxes(arr, 0 if model == "mediapipe_face_short" else 1, confidence)
    dets.preview = draw_preview(image, dets.boxes, dets.labels, dets.confidences, dets.masks)
    return dets
