"""sd-webui-storyboard: the after-detailer, an always-visible accordion in txt2img and img2img (off by default).

API: alwayson_scripts {"Storyboard detailer": {"args": [enabled, {pass 1}, {pass 2}, ..., detail_only]}};
GET /storyboard/v1/detailer/schema gives the pass fields. Its settings and routes are registered by storyboard.py.
"""
from modules import scripts

from lib_storyboard.detailer.args import SCRIPT_TITLE
from lib_storyboard.webui import detailer_hooks, detailer_ui


class StoryboardDetailer(scripts.Script):
    """Detects faces/hands after generation and redraws each region through the host's img2img."""

    def title(self):
        return SCRIPT_TITLE

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        return detailer_ui.build_ui(self, is_img2img)

    def process(self, p, *args):
        detailer_hooks.process(p, args)

    def postprocess_image(self, p, pp, *args):
        detailer_hooks.postprocess_image(p, pp)
