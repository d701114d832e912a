"""The shot classifier on the labelled set built from photos that ship in installed packages (real mediapipe)."""
import pytest
from PIL import Image

from lib_storyboard.framing import classify_image
from lib_storyboard.framing.evalset import PEOPLE, build_samples, photo_path
from lib_storyboard.framing.evaluate import evaluate

pytest.importorskip("mediapipe")


def test_classifier_is_at_least_90_percent_right_on_package_photos():
    samples = build_samples(step=4)  # a quarter of the framings (the CLI's `classify --evaluate` runs them all)
    assert {s.shot_key for s in samples} == {"cu", "ms", "fs", None}
    conf = evaluate(samples)
    assert conf.accuracy >= 0.9, "\n".join(conf.rows())


def test_reason_names_the_evidence():
    bus = Image.open(photo_path("bus"))
    a = PEOPLE[0]
    full = bus.crop((a.cx - 200, a.top - 30, a.cx + 200, a.feet + 30))
    guess = classify_image(full)
    assert guess.shot_key == "fs" and "ankles" in guess.reason and 0.5 <= guess.confidence <= 1
    close = bus.crop((a.cx - 60, a.top - 10, a.cx + 60, a.chin + 30))
    guess = classify_image(close)
    assert guess.shot_key == "cu" and "%" in guess.reason


def test_no_person_in_a_plain_image():
    guess = classify_image(Image.new("RGB", (300, 200), (90, 140, 200)))
    assert guess.shot_key is None and guess.label == "no person" and "no person" in guess.reason


def test_sketches_are_read_too_at_the_stated_level():
    """The README states about two thirds on sketches (misses: "no person", or the neighbouring shot); an eighth of
    the set must stay above half."""
    from lib_storyboard.dataset_builder.sketch import Sketcher

    conf = evaluate(build_samples(step=8), Sketcher("lineart_standard", use_controlnet_aux=False))
    assert conf.accuracy >= 0.5 and conf.answered_accuracy >= 0.7, "\n".join(conf.rows())
