"""Sketch conversion offline: the weightless styles through controlnet-aux (and OpenCV without it) on a real photo;
weighted annotators refuse in one sentence when their weights are not here and downloads are off."""
import numpy as np
import pytest
from PIL import Image

from lib_storyboard.dataset_builder.sketch import Sketcher, has_controlnet_aux
from lib_storyboard.framing.evalset import photo_path


@pytest.fixture(scope="module")
def photo():
    return Image.open(photo_path("astronaut")).convert("RGB").resize((256, 192))


def _is_sketch(im, size):
    a = np.asarray(im.convert("L"))
    assert im.mode == "RGB" and im.size == size
    # mostly paper, with a real amount of dark line
    assert np.mean(a > 200) > 0.6 and np.mean(a < 128) > 0.01


@pytest.mark.parametrize("style", ["canny", "lineart_standard"])
def test_weightless_styles_without_controlnet_aux(photo, style):
    _is_sketch(Sketcher(style, use_controlnet_aux=False)(photo), photo.size)


@pytest.mark.skipif(not has_controlnet_aux(), reason="controlnet-aux is not installed")
def test_weightless_styles_through_controlnet_aux_offline(photo, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for style in ("canny", "lineart_standard"):
        sk = Sketcher(style)
        assert sk.aux and type(sk._detector).__module__.startswith("controlnet_aux")
        _is_sketch(sk(photo), photo.size)


@pytest.mark.skipif(not has_controlnet_aux(), reason="controlnet-aux is not installed")
@pytest.mark.parametrize("style", ["hed", "lineart", "pidinet"])
def test_weighted_styles_refuse_offline_in_one_sentence(style, tmp_path):
    with pytest.raises(ValueError) as e:
        Sketcher(style, allow_download=False, cache_dir=str(tmp_path))
    msg = str(e.value)
    assert msg.count(". ") == 0 and msg.endswith(".") and "downloads are off" in msg and "lllyasviel" in msg
    with pytest.raises(ValueError, match="are not in"):
        Sketcher(style, allow_download=False, weights_dir=str(tmp_path))


def test_unknown_style_and_missing_package_are_one_sentence():
    with pytest.raises(ValueError, match="Unknown sketch style 'oil'"):
        Sketcher("oil")
    with pytest.raises(ValueError, match="needs controlnet-aux"):
        Sketcher("hed", use_controlnet_aux=False)
