"""Proof of learning on the shipped toy-world base: after our trainer's pivotal tuning, the three shot tokens
control framing, measured on panels the trainer never saw (a shortened `benchmarks/bench_proof_of_learning.py`).

The thresholds sit below the lowest of the seeds measured for this exact setting (see THRESHOLDS), with margin;
the untrained tokens on the same panels are the chance level the trained ones must clear.
"""
from __future__ import annotations

import os

import pytest
import torch

from lib_storyboard.models import toybase_path

# This test's settings measured over seeds 0-4 on the shipped base (benchmarks/bench_proof_of_learning.py
# --heldout 10 --generate 10, one thread):
#   (a) classifier, trained 100/93/97/100/97 %, untrained 33/37/27/33/20 %; lowest per-shot 90 %;
#   (b) generated, trained 93/80/83/50/80 %, untrained 33/33/30/37/27 %.
# Thresholds: the lowest seed less 10-13 points; the gap to the untrained tokens, the smallest gap less 3-29 points
# ((a) 56 points, at seed 1; (b) 13 points, at seed 3, where the prompts outweighed the tokens in three columns).
SEED = 0
THRESHOLDS = {"trained_loss": 0.80, "trained_gen": 0.40}


@pytest.fixture(scope="module")
def proof(tmp_path_factory):
    from lib_storyboard.adapters.diffusers_sd15 import load_single_file
    from lib_storyboard.toyworld.proof import train_and_measure

    assert toybase_path(), "the toy-world base must ship with the package"
    # Half the cores, as the benchmark and the demo: on 2 cores 2 threads ran this 40 % slower than 1 (211 s vs 151 s).
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    try:
        adapter = load_single_file(toybase_path())
        r = train_and_measure(adapter, str(tmp_path_factory.mktemp("proof")), seed=SEED, n_per_shot=48,
                              heldout_per_shot=10, gen_per_shot=10)
    finally:
        torch.set_num_threads(1)
    for k in ("trained_loss", "base_loss", "trained_gen", "base_gen"):
        print(r[k].format(k))
    return r


def test_heldout_panels_are_classified_by_their_own_token(proof):
    assert proof["trained_loss"].accuracy >= THRESHOLDS["trained_loss"]
    assert proof["trained_loss"].accuracy >= proof["base_loss"].accuracy + 0.27
    assert min(proof["trained_loss"].per_shot().values()) >= 0.6      # lowest measured: 0.9


def test_generated_panels_take_their_tokens_framing(proof):
    assert proof["trained_gen"].accuracy >= THRESHOLDS["trained_gen"]
    assert proof["trained_gen"].accuracy >= proof["base_gen"].accuracy + 0.1
