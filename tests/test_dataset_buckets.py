"""Aspect-ratio buckets, fitting real photos to them, and the deterministic per-epoch batcher."""
from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest
from PIL import Image
from skimage import data

from lib_storyboard.dataset.buckets import BucketBatcher, fit_to_bucket, make_buckets, nearest_bucket


@pytest.mark.parametrize("res, step, ratio", [(512, 64, 2.0), (768, 64, 1.5), (1024, 64, 2.0), (64, 8, 2.0),
                                              (256, 32, 3.0), (512, 8, 2.0), (512, 64, 1.0)])
def test_bucket_properties(res, step, ratio):
    buckets = make_buckets(res, step, ratio)
    assert (res, res) in buckets
    assert len(set(buckets)) == len(buckets)
    for w, h in buckets:
        assert w % step == 0 and h % step == 0 and w > 0 and h > 0
        assert w * h <= res * res
        assert max(w, h) / min(w, h) <= ratio + 1e-9
        assert (h, w) in buckets
    ratios = [w / h for w, h in buckets]
    assert ratios == sorted(ratios)
    # no bucket is a smaller crop of another: a wider one is never also taller
    for a in buckets:
        assert not any(b != a and b[0] >= a[0] and b[1] >= a[1] for b in buckets)


def test_known_bucket_sets():
    assert make_buckets(512) == [(384, 640), (448, 576), (512, 512), (576, 448), (640, 384)]
    assert make_buckets(64, 8) == [(48, 80), (56, 72), (64, 64), (72, 56), (80, 48)]
    assert make_buckets(512, 64, 1.0) == [(512, 512)]
    assert (1408, 704) in make_buckets(1024)  # exactly 2:1, clamped by the ratio rather than the area


@pytest.mark.parametrize("args, msg", [((500,), "multiple of the bucket step 64"), ((512, 60), "multiple of 8"),
                                       ((512, 64, 0.5), "at least 1")])
def test_bucket_argument_errors(args, msg):
    with pytest.raises(ValueError, match=msg):
        make_buckets(*args)


def test_nearest_bucket():
    b = make_buckets(512)
    assert nearest_bucket(512, 512, b) == (512, 512)
    assert nearest_bucket(600, 400, b) == (640, 384)     # coffee, 1.5
    assert nearest_bucket(451, 300, b) == (640, 384)     # chelsea, 1.503
    assert nearest_bucket(300, 451, b) == (384, 640)
    assert nearest_bucket(1000, 100, b) == (640, 384)    # extreme ratios go to the widest
    assert nearest_bucket(530, 470, b) == (512, 512)     # 1.128: nearer 1.0 than 1.286 in log space
    assert nearest_bucket(560, 440, b) == (576, 448)     # 1.273
    with pytest.raises(ValueError):
        nearest_bucket(0, 10, b)
    with pytest.raises(ValueError):
        nearest_bucket(10, 10, [])


def test_fit_to_bucket_covers_and_crops_the_centre():
    photo = Image.fromarray(data.coffee())  # 600×400
    out = fit_to_bucket(photo, (512, 512))
    assert out.size == (512, 512) and out.mode == "RGB"
    # scaled by 512/400 = 1.28 to 768×512, then 128 px cut from each side: the centre column survives
    ref = np.asarray(photo.resize((768, 512), Image.LANCZOS))[:, 128:640]
    assert np.array_equal(np.asarray(out), ref)
    assert fit_to_bucket(photo, (640, 384)).size == (640, 384)
    assert fit_to_bucket(photo, (64, 128)).size == (64, 128)
    same = Image.fromarray(data.astronaut())
    assert np.array_equal(np.asarray(fit_to_bucket(same, (512, 512))), data.astronaut())


def test_fit_keeps_a_centred_mark_in_the_centre():
    a = np.full((300, 900, 3), 255, np.uint8)
    a[140:160, 440:460] = 0  # a black square in the middle of a 3:1 image
    out = np.asarray(fit_to_bucket(Image.fromarray(a), (64, 64)))
    dark = np.argwhere(out.mean(axis=2) < 128)
    assert len(dark) > 0
    cy, cx = dark.mean(axis=0)
    assert abs(cy - 31.5) < 1.5 and abs(cx - 31.5) < 1.5


def _bucket_list(n: int, seed: int = 0) -> list[tuple[int, int]]:
    choices = [(512, 512), (640, 384), (384, 640), (576, 448)]
    rng = random.Random(seed)
    return [rng.choice(choices) for _ in range(n)]


@pytest.mark.parametrize("n, bs", [(1, 1), (7, 4), (50, 4), (101, 8), (30, 64)])
def test_batcher_coverage_and_no_mixing(n, bs):
    bucket_of = _bucket_list(n)
    batcher = BucketBatcher(bucket_of, bs, seed=3)
    sizes = Counter(bucket_of)
    for epoch in range(4):
        batches = batcher.batches(epoch)
        assert len(batches) == len(batcher)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(n))  # every index exactly once
        for b in batches:
            assert 1 <= len(b) <= bs and len({bucket_of[i] for i in b}) == 1
        # at most one incomplete batch per bucket, and it is kept
        short = Counter(bucket_of[b[0]] for b in batches if len(b) < bs)
        assert all(v == 1 for v in short.values())
        assert sum(len(b) for b in batches if bucket_of[b[0]] == (512, 512)) == sizes[(512, 512)]


def test_batcher_is_stateless_and_deterministic():
    bucket_of = _bucket_list(60, seed=1)
    a, b = BucketBatcher(bucket_of, 4, seed=42), BucketBatcher(bucket_of, 4, seed=42)
    assert a.batches(5) == b.batches(5)
    first = [a.batches(e) for e in range(3)]
    assert [a.batches(e) for e in reversed(range(3))] == first[::-1]  # order of calls does not matter
    assert first[0] != first[1] != first[2]                           # each epoch reshuffles
    assert BucketBatcher(bucket_of, 4, seed=43).batches(0) != first[0]
    # buckets interleave across the epoch rather than running one after another
    kinds = [bucket_of[bt[0]] for bt in first[0]]
    assert sum(k1 != k2 for k1, k2 in zip(kinds, kinds[1:])) > len(kinds) // 3


def test_batcher_errors_and_empty():
    with pytest.raises(ValueError, match="batch size must be at least 1"):
        BucketBatcher([(64, 64)], 0, seed=0)
    empty = BucketBatcher([], 4, seed=0)
    assert empty.batches(0) == [] and len(empty) == 0
