"""Caption building: trigger first always, shuffling, dropout rates, and the 75-token cap with the real tokenizer."""
from __future__ import annotations

import random

import pytest

from lib_storyboard.dataset.captions import MAX_TOKENS, build_caption, token_counter
from lib_storyboard.models.clip_tokenizer import load_clip_tokenizer

TAGS = ["red hair", "smile", "ink", "rain", "umbrella", "street", "night", "coat", "boots", "puddle"]


def _split(caption: str) -> list[str]:
    return caption.split(", ")


def test_trigger_first_and_tags_a_subset_over_many_seeds():
    for seed in range(300):
        rng = random.Random(seed)
        cap = build_caption("<cu_trg>", TAGS, shuffle=True, rng=rng, keep_tags=2, tag_dropout=0.3,
                            caption_dropout=0.1)
        parts = _split(cap)
        assert parts[0] == "<cu_trg>"
        assert "<cu_trg>" not in parts[1:]
        assert len(set(parts[1:])) == len(parts) - 1 and set(parts[1:]) <= set(TAGS)
        if len(parts) > 1:  # not caption-dropped: kept tags stay in place
            assert parts[1:3] == TAGS[:2]


def test_no_shuffle_no_dropout_keeps_everything_in_order():
    cap = build_caption("<ms_trg>", TAGS, shuffle=False, rng=random.Random(0))
    assert cap == ", ".join(["<ms_trg>"] + TAGS)
    assert build_caption("<ms_trg>", [], shuffle=True, rng=random.Random(0)) == "<ms_trg>"


def test_shuffle_changes_order_but_not_kept_tags():
    orders = {build_caption("<fs_trg>", TAGS, shuffle=True, rng=random.Random(s), keep_tags=3) for s in range(50)}
    assert len(orders) > 40
    for cap in orders:
        parts = _split(cap)
        assert parts[:4] == ["<fs_trg>"] + TAGS[:3] and sorted(parts[4:]) == sorted(TAGS[3:])


def test_same_seed_same_caption():
    kw = dict(shuffle=True, keep_tags=1, tag_dropout=0.4, caption_dropout=0.2)
    a = [build_caption("<cu_trg>", TAGS, rng=random.Random(7), **kw) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    rng1, rng2 = random.Random(11), random.Random(11)
    assert [build_caption("<cu_trg>", TAGS, rng=rng1, **kw) for _ in range(20)] == \
        [build_caption("<cu_trg>", TAGS, rng=rng2, **kw) for _ in range(20)]


def test_dropout_rates_roughly_right():
    rng = random.Random(1234)
    n = 4000
    caps = [build_caption("<cu_trg>", TAGS, shuffle=True, rng=rng, caption_dropout=0.25) for _ in range(n)]
    dropped = sum(c == "<cu_trg>" for c in caps) / n
    assert 0.22 < dropped < 0.28
    assert all(c == "<cu_trg>" or len(_split(c)) == 11 for c in caps)

    rng = random.Random(99)
    kept = [len(_split(build_caption("<cu_trg>", TAGS, shuffle=False, rng=rng, keep_tags=2, tag_dropout=0.5))) - 3
            for _ in range(n)]
    mean_kept_of_rest = sum(kept) / n  # 8 droppable tags at 0.5 → 4 on average
    assert 3.8 < mean_kept_of_rest < 4.2
    assert min(kept) >= 0  # kept tags are never dropped

    rng = random.Random(5)
    assert all(build_caption("<ms_trg>", TAGS, shuffle=True, rng=rng, caption_dropout=1.0) == "<ms_trg>"
               for _ in range(50))


def test_token_cap_with_the_real_clip_tokenizer():
    count = token_counter(load_clip_tokenizer())
    many = [f"detail number {i} with extra words" for i in range(40)]  # far beyond 75 tokens
    assert count(", ".join(["<cu_trg>"] + many)) > MAX_TOKENS
    for seed in range(5):
        cap = build_caption("<cu_trg>", many, shuffle=True, rng=random.Random(seed), keep_tags=1,
                            count_tokens=count)
        parts = _split(cap)
        assert parts[0] == "<cu_trg>" and parts[1] == many[0]
        assert count(cap) <= MAX_TOKENS
        # the longest fitting prefix: one more tag would not fit
        full = _split(build_caption("<cu_trg>", many, shuffle=True, rng=random.Random(seed), keep_tags=1))
        assert full[:len(parts)] == parts
        assert count(", ".join(full[:len(parts) + 1])) > MAX_TOKENS
    short = build_caption("<cu_trg>", TAGS, shuffle=False, rng=random.Random(0), count_tokens=count)
    assert short == ", ".join(["<cu_trg>"] + TAGS)
    # "<cu_trg>" is 6 CLIP tokens, ", red hair" 3 more, ", smile" 2 more
    capped = {m: build_caption("<cu_trg>", TAGS, shuffle=False, rng=random.Random(0), count_tokens=count,
                               max_tokens=m) for m in (3, 8, 9, 10, 11)}
    assert capped == {3: "<cu_trg>", 8: "<cu_trg>", 9: "<cu_trg>, red hair", 10: "<cu_trg>, red hair",
                      11: "<cu_trg>, red hair, smile"}
    # With the trigger's vectors known, its name's 4 ids (cu _ tr g) count as the 8 slots they become.
    with_vectors = token_counter(load_clip_tokenizer(), {"cu_trg": 8})
    assert with_vectors("<cu_trg>") == count("<cu_trg>") - 4 + 8 == 10
    assert with_vectors("<cu_trg>, red hair") == 10 + 3


@pytest.mark.parametrize("kw, msg", [
    (dict(tag_dropout=1.5), "tag_dropout must be between 0 and 1"),
    (dict(caption_dropout=-0.1), "caption_dropout must be between 0 and 1"),
    (dict(keep_tags=-1), "keep_tags must be 0 or more"),
])
def test_bad_arguments(kw, msg):
    with pytest.raises(ValueError, match=msg):
        build_caption("<cu_trg>", TAGS, shuffle=True, rng=random.Random(0), **kw)
    with pytest.raises(ValueError, match="needs a trigger"):
        build_caption("", TAGS, shuffle=True, rng=random.Random(0))
