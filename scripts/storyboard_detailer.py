"""sd-webui-storyboard: the after-detailer, an always-visible accordion in txt2img and img2img (off by default).

API: alwayson_scripts {"Storyboard detailer": {"args": [enabled, {pass 1}, {pass 2}, ..., detail_only]}};
GET /storyboard/v1/detailer/schema gives the pass fields. A1111 puts the extension folder on sys.path only while
this file runs, so the package is imported here at the top.
"""
from modules import script_callbacks, scripts

import lib_storyboard.adapters.a1111_detailer as sb_detailer
from lib_storyboard.detailer.args import SCRIPT_TITLE

script_callbacks.on_ui_settings(sb_detailer.add_settings)
script_callbacks.on_app_started(lambda demo, app: sb_detailer.on_app_started(app))


class StoryboardDetailer(scripts.Script):
    """Detects faces/hands after generation and redraws each region through the host's img2img."""

    def title(self):
        return SCRIPT_TITLE

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        return sb_detailer.build_ui(self, is_img2img)

    def process(self, p, *args):
        sb_detailer.process(p, args)

    def postprocess_image(self, p, pp, *args):
        sb_detailer.postprocess_image(p, pp)
