"""Mask operations on synthetic masks, checked pixel by pixel."""
import numpy as np
import pytest
from PIL import Image

from lib_storyboard.detection.result import Detections, box_mask
from lib_storyboard.detailer import masks as M

SIZE = (40, 30)  # width, height


def rect(x1, y1, x2, y2, size=SIZE):
    a = np.zeros((size[1], size[0]), np.uint8)
    a[y1:y2, x1:x2] = 255
    return a


def L(a):
    return Image.fromarray(a, "L")


def arr(m):
    return np.asarray(m)


def dets(boxes, confs=None):
    confs = confs or [0.9] * len(boxes)
    return Detections(SIZE, [tuple(map(float, b)) for b in boxes], [box_mask(b, SIZE) for b in boxes],
                      list(confs), [f"d{i}" for i in range(len(boxes))])


def test_box_mask_is_exact_rectangle():
    assert np.array_equal(arr(box_mask((3, 4, 10, 8), SIZE)), rect(3, 4, 10, 8))
    # boxes reaching outside the image are clamped
    assert np.array_equal(arr(box_mask((-5, -5, 2, 3), SIZE)), rect(0, 0, 2, 3))


def test_detections_refuse_mismatched_parts():
    with pytest.raises(ValueError, match="as many masks"):
        Detections(SIZE, [(0, 0, 2, 2)], [], [0.5], ["a"])
    with pytest.raises(ValueError, match="PIL 'L' image of size"):
        Detections(SIZE, [(0, 0, 2, 2)], [Image.new("L", (8, 8))], [0.5], ["a"])


def test_confidence_threshold_is_inclusive():
    d = dets([(0, 0, 2, 2), (5, 5, 7, 7), (9, 9, 11, 11)], [0.2, 0.3, 0.9])
    kept = M.filter_confidence(d, 0.3)
    assert kept.confidences == [0.3, 0.9] and kept.labels == ["d1", "d2"]


def test_area_ratio_bounds():
    # image area 1200: boxes of 12 (1%), 120 (10%), 600 (50%) pixels
    d = dets([(0, 0, 4, 3), (0, 0, 12, 10), (0, 0, 20, 30)])
    assert M.filter_area_ratio(d, 0.05, 1.0).labels == ["d1", "d2"]
    assert M.filter_area_ratio(d, 0.0, 0.1).labels == ["d0", "d1"]
    assert M.filter_area_ratio(d, 0.01, 0.01).labels == ["d0"]


def test_top_k_by_area_and_confidence():
    d = dets([(0, 0, 2, 2), (0, 0, 10, 10), (0, 0, 5, 5)], [0.9, 0.5, 0.7])
    assert M.top_k(d, 2, "area").labels == ["d1", "d2"]
    assert M.top_k(d, 1, "confidence").labels == ["d0"]
    assert M.top_k(d, 0, "area").labels == ["d0", "d1", "d2"]
    with pytest.raises(ValueError, match="top_k_by"):
        M.top_k(d, 1, "size")


def test_detection_orders():
    d = dets([(20, 0, 22, 2), (2, 5, 12, 15), (10, 0, 15, 5)], [0.5, 0.6, 0.9])
    assert M.sort_detections(d, "left_to_right").labels == ["d1", "d2", "d0"]
    assert M.sort_detections(d, "area").labels == ["d1", "d2", "d0"]
    assert M.sort_detections(d, "confidence").labels == ["d2", "d1", "d0"]
    assert M.sort_detections(d, "none").labels == ["d0", "d1", "d2"]


def test_offset_right_and_up_without_wraparound():
    m = L(rect(0, 10, 5, 20))
    assert np.array_equal(arr(M.offset_mask(m, 3, 0)), rect(3, 10, 8, 20))
    assert np.array_equal(arr(M.offset_mask(m, 0, 4)), rect(0, 6, 5, 16))     # y > 0 moves up
    assert np.array_equal(arr(M.offset_mask(m, -2, -3)), rect(0, 13, 3, 23))  # left part falls off, no wrap
    assert not arr(M.offset_mask(m, 100, 0)).any()


def test_dilate_and_erode_move_edges_by_exact_pixels():
    m = L(rect(10, 10, 20, 16))
    assert np.array_equal(arr(M.dilate_erode(m, 2)), rect(8, 8, 22, 18))
    assert np.array_equal(arr(M.dilate_erode(m, -2)), rect(12, 12, 18, 14))
    assert not arr(M.dilate_erode(m, -3)).any()  # a 6-px-high region erodes away at 3 px
    assert M.dilate_erode(m, 0) is m
    # a region touching the border is not eroded from the border side, and dilation stops at the border
    edge = L(rect(0, 0, 6, 6))
    assert np.array_equal(arr(M.dilate_erode(edge, -1)), rect(0, 0, 5, 5))
    assert np.array_equal(arr(M.dilate_erode(edge, 3)), rect(0, 0, 9, 9))


def test_merge_and_merge_invert():
    a, b = rect(0, 0, 5, 5), rect(3, 3, 10, 8)
    union = np.maximum(a, b)
    merged = M.merge_masks([L(a), L(b)], "merge")
    assert len(merged) == 1 and np.array_equal(arr(merged[0]), union)
    inverted = M.merge_masks([L(a), L(b)], "merge_invert")
    assert len(inverted) == 1 and np.array_equal(arr(inverted[0]), 255 - union)
    assert [arr(x).sum() for x in M.merge_masks([L(a), L(b)], "none")] == [a.sum(), b.sum()]
    with pytest.raises(ValueError, match="merge mode"):
        M.merge_masks([L(a)], "union")


def test_blur_feathers_only_near_the_edge():
    m = L(rect(10, 8, 30, 22))
    assert M.blur_mask(m, 0) is m
    b = arr(M.blur_mask(m, 2))
    assert b[15, 20] == 255 and b[0, 0] == 0 and b[15, 2] == 0      # far inside / far outside unchanged
    assert 0 < b[15, 10] < 255 and 0 < b[15, 9] < 255               # the edge is soft on both sides
    assert np.array_equal(b, b[:, ::-1])                            # symmetric (centred rectangle)


def test_mask_bbox():
    assert M.mask_bbox(L(rect(3, 4, 9, 7))) == (3, 4, 9, 7)
    assert M.mask_bbox(L(rect(0, 0, 0, 0))) is None


def test_prepare_masks_runs_every_step_in_order():
    d = dets([(30, 2, 36, 8), (2, 2, 12, 12), (15, 15, 17, 17)], [0.9, 0.8, 0.1])
    kept, masks = M.prepare_masks(d, confidence=0.3, order="left_to_right", x_offset=1, y_offset=1, dilate=1)
    assert kept.labels == ["d1", "d0"]
    # offset right 1 and up 1, then grow by 1
    assert np.array_equal(arr(masks[0]), rect(2, 0, 14, 12))
    assert np.array_equal(arr(masks[1]), rect(30, 0, 38, 8))
    _, merged = M.prepare_masks(d, confidence=0.3, merge="merge")
    assert len(merged) == 1 and np.array_equal(arr(merged[0]), np.maximum(rect(30, 2, 36, 8), rect(2, 2, 12, 12)))
    # masks that erode away are dropped together with their detection
    kept, masks = M.prepare_masks(d, dilate=-2)
    assert kept.labels == ["d0", "d1"] and len(masks) == 2
    # nothing detected → nothing to do, whatever the merge mode
    assert M.prepare_masks(dets([]), merge="merge_invert")[1] == []
