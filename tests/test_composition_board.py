"""Composition on the standalone board: the toy base's panels through diffusers' ControlNet with the board's own
sampler. from_unet zero-initialises the ControlNet's output convolutions, so it must give the plain panel to the
bit; perturbed, it changes the panel, and the pose it is given decides how."""
import json
import os
import typing

import pytest
import torch
from PIL import ImageChops

from lib_storyboard.board.draw import diffusers_drawer, draw_panels
from lib_storyboard.board.options import BoardOptions
from lib_storyboard.board.prompts import plan_board
from lib_storyboard.board.scenes import parse_scenes
from lib_storyboard.cli import main
from lib_storyboard.composition import COMPOSITIONS
from lib_storyboard.composition.controlnet_diffusers import controlnet_like, load_controlnet
from lib_storyboard.models import toybase_path

CU = "<cu_trg>, a sketch of a person in a street"


@pytest.fixture(scope="module")
def adapter():
    from lib_storyboard.adapters.diffusers_sd15 import load_single_file

    torch.manual_seed(0)
    ad = load_single_file(toybase_path())
    yield ad
    ad.close()


def _perturbed(unet, seed=0):
    net = controlnet_like(unet)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        # the zero convs: every output, and the pose embedding's last conv (without it the pose has no effect)
        for conv in list(net.controlnet_down_blocks) + [net.controlnet_mid_block, net.controlnet_cond_embedding.conv_out]:
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 0.05)
    return net


def _options(composition, weight=1.0):
    return BoardOptions.from_dict({"width": 64, "height": 64, "cfg": 2.0, "steps": 4, "composition": composition,
                                   "composition_weight": weight})


def _draw(adapter, composition, prompt=CU, controlnet=None, weight=1.0):
    with diffusers_drawer(adapter, _options(composition, weight), None, controlnet) as draw:
        return draw(prompt, "", 3, 64, 64, pose=composition)


def _differs(a, b) -> bool:
    return ImageChops.difference(a, b).getbbox() is not None


def test_the_option_lists_the_compositions():
    assert typing.get_args(BoardOptions.__fields__["composition"].outer_type_) == COMPOSITIONS
    assert BoardOptions.from_dict({}).composition == "none"


def test_zero_output_controlnet_gives_the_plain_panel_and_a_trained_one_changes_it(adapter):
    plain = _draw(adapter, "none")
    assert not _differs(_draw(adapter, "standing", controlnet=controlnet_like(adapter.unet)), plain)  # exact
    net = _perturbed(adapter.unet)
    standing = _draw(adapter, "standing", controlnet=net)
    assert _differs(standing, plain)
    assert _differs(_draw(adapter, "two", controlnet=net), standing)                  # the pose image matters
    assert _differs(_draw(adapter, "standing", prompt=CU.replace("cu", "fs"), controlnet=net),
                    _draw(adapter, "none", prompt=CU.replace("cu", "fs")))
    assert not _differs(_draw(adapter, "standing", controlnet=net, weight=0.0), plain)  # weight 0: no effect
    # a panel without a shot (an insert) gets no pose: drawn as without the ControlNet
    assert not _differs(_draw(adapter, "standing", "a sketch of a street", net), _draw(adapter, "none",
                                                                                        "a sketch of a street"))
    assert "predict" not in vars(adapter)                                              # the hook is gone


def test_composition_without_a_controlnet_is_one_sentence(adapter):
    with pytest.raises(ValueError, match=r"^The composition 'sitting' needs an openpose ControlNet"):
        _draw(adapter, "sitting")
    scenes = parse_scenes("cu | a face |\nms | a hand | | walking", "lines")
    with pytest.raises(ValueError, match=r"^Scene 2's pose 'walking' needs an openpose ControlNet"):
        with diffusers_drawer(adapter, _options("none"), None, None, scenes):
            pass


def test_a_scenes_own_pose_overrides_the_boards_composition(adapter):
    """On a board composed 'standing': the scene posed 'none' is the plain panel to the bit, the scene posed 'two'
    differs from the board's standing panel, and a scene without a pose of its own is that standing panel."""
    net = _perturbed(adapter.unet)
    scenes = parse_scenes("cu | a sketch of a person in a street | | 3 | none\n"
                          "cu | a sketch of a person in a street | | 3 | two\n"
                          "cu | a sketch of a person in a street | | 3", "lines")
    options = _options("standing")
    plans = plan_board(scenes, options)
    assert [p.pose for p in plans] == ["none", "two", "standing"] and len({p.prompt for p in plans}) == 1
    with diffusers_drawer(adapter, options, None, net, scenes) as draw:
        unposed, two, standing = draw_panels(plans, options, draw)
    assert not _differs(unposed, _draw(adapter, "none"))
    assert not _differs(standing, _draw(adapter, "standing", controlnet=net))
    assert _differs(two, standing) and _differs(standing, unposed)


def test_board_command_with_a_controlnet_file(adapter, tmp_path, capsys):
    from safetensors.torch import save_file

    net = _perturbed(adapter.unet)
    path = str(tmp_path / "openpose.safetensors")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, path)
    loaded = load_controlnet(path, adapter.unet)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), loaded.state_dict().values()))

    scenes = tmp_path / "scenes.txt"
    scenes.write_text("CU | a person in a street |\nFS | a person by a door |\n- | a street |\n", encoding="utf-8")
    base = ["board", "--scenes", str(scenes), "--set", "steps=4"]
    assert main(base + ["--out", str(tmp_path / "plain")]) == 0
    assert main(base + ["--out", str(tmp_path / "posed"), "--set", "composition=walking", "--controlnet", path]) == 0
    capsys.readouterr()
    (plain,), (posed,) = os.listdir(tmp_path / "plain"), os.listdir(tmp_path / "posed")
    from PIL import Image
    pics = [[Image.open(tmp_path / d / b / f"panel-00{i}.png").convert("RGB") for i in (1, 2, 3)]
            for d, b in (("plain", plain), ("posed", posed))]
    assert _differs(pics[0][0], pics[1][0]) and _differs(pics[0][1], pics[1][1])
    assert not _differs(pics[0][2], pics[1][2])                        # the insert has no shot, so no pose
    board = json.load(open(tmp_path / "posed" / posed / "board.json", encoding="utf-8"))
    assert board["options"]["composition"] == "walking" and board["model"]["controlnet_path"] == path

    # redraw reads the ControlNet from board.json
    assert main(["board-redraw", str(tmp_path / "posed" / posed), "--panel", "1", "--seed", "0"]) == 0
    capsys.readouterr()

    # refusals: one sentence, exit code 2
    assert main(base + ["--out", str(tmp_path / "x"), "--set", "composition=two"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: The composition 'two' needs an openpose ControlNet: pass --controlnet with an SD1.5 "
                   "ControlNet .safetensors.\n")
    posed = tmp_path / "posed.txt"
    posed.write_text("CU | a person in a street |\nFS | a person by a door | | sitting\n", encoding="utf-8")
    assert main(["board", "--scenes", str(posed), "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err == ("error: Scene 2's pose 'sitting' needs an openpose ControlNet: pass "
                                       "--controlnet with an SD1.5 ControlNet .safetensors.\n")
    other = str(tmp_path / "other.safetensors")
    from diffusers import UNet2DConditionModel
    small = UNet2DConditionModel(sample_size=8, block_out_channels=(32, 64), layers_per_block=1,
                                 cross_attention_dim=64, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
    save_file({k: v.contiguous() for k, v in controlnet_like(small).state_dict().items()}, other)
    assert main(base + ["--out", str(tmp_path / "x"), "--set", "composition=two", "--controlnet", other]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and not (tmp_path / "x").exists()
    assert errors[0].startswith("error: other.safetensors is not a ControlNet for this checkpoint's UNet (")
