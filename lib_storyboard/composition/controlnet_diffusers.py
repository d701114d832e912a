"""ControlNet on the diffusers adapter (the standalone CLI and the tests): a user's SD1.5 ControlNet file, and the
panel sampler's UNet calls guided by a pose image.

The sampler stays the board's own (training/preview.sample), so a panel with composition differs from one without
only by the ControlNet's residuals: a ControlNet whose output convolutions are zero (diffusers' from_unet starts
so) gives exactly the plain panel.
"""
from __future__ import annotations

import contextlib
import os

import numpy as np
import torch
from PIL import Image


def controlnet_like(unet):
    """An untrained ControlNet shaped for `unet` (diffusers' from_unet: the encoder copied, output convs zero)."""
    from diffusers import ControlNetModel

    return ControlNetModel.from_unet(unet)


def load_controlnet(path: str, unet):
    """A ControlNet file (.safetensors, original LDM keys as lllyasviel's or diffusers keys) for the base `unet`;
    ValueError with one sentence when it is missing or does not fit."""
    from diffusers import ControlNetModel
    from diffusers.loaders.single_file_utils import convert_controlnet_checkpoint
    from safetensors.torch import load_file

    name = os.path.basename(path)
    if not path.lower().endswith(".safetensors"):
        raise ValueError(f"Only .safetensors ControlNet files can be loaded ({name} is not one).")
    if not os.path.isfile(path):
        raise ValueError(f"The ControlNet file {path} does not exist.")
    try:
        state = load_file(path)
    except Exception as e:
        raise ValueError(f"{name} is not a readable safetensors file ({e}).") from e
    net = ControlNetModel.from_unet(unet, load_weights_from_unet=False)
    if "controlnet_cond_embedding.conv_in.weight" not in state:
        state = convert_controlnet_checkpoint({k.removeprefix("control_model."): v for k, v in state.items()},
                                              dict(net.config))
    want = net.state_dict()
    missing = sum(k not in state for k in want)
    extra = sum(k not in want for k in state)
    shapes = sum(k in state and tuple(state[k].shape) != tuple(v.shape) for k, v in want.items())
    if missing or extra or shapes:
        raise ValueError(f"{name} is not a ControlNet for this checkpoint's UNet ({missing} tensors missing, "
                         f"{extra} unexpected, {shapes} of another shape; an SD1.5 checkpoint needs an SD1.5 "
                         f"ControlNet).")
    net.load_state_dict(state, strict=True)
    return net.eval().requires_grad_(False)


def hint_tensor(image: Image.Image, width: int, height: int) -> torch.Tensor:
    """The pose image as ControlNet's condition: RGB in 0..1, (1, 3, height, width)."""
    im = image.convert("RGB")
    if im.size != (width, height):
        im = im.resize((width, height), Image.BICUBIC)
    return torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]


@contextlib.contextmanager
def guided(adapter, controlnet, hint: torch.Tensor, scale: float = 1.0):
    """While inside, `adapter.predict` adds the ControlNet's residuals for `hint` to every UNet call."""
    controlnet.to(adapter.device, dtype=adapter.weight_dtype)

    def predict(x_t, t, cond):
        h = hint.to(adapter.device, adapter.weight_dtype).expand(x_t.shape[0], -1, -1, -1)
        down, mid = controlnet(x_t, t, encoder_hidden_states=cond, controlnet_cond=h, conditioning_scale=scale,
                               return_dict=False)
        return adapter.unet(x_t, t, encoder_hidden_states=cond, down_block_additional_residuals=down,
                            mid_block_additional_residual=mid).sample

    adapter.predict = predict    # an instance attribute over the class's method, removed on the way out
    try:
        yield
    finally:
        del adapter.predict
