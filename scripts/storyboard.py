"""sd-webui-storyboard host glue: the Storyboard tab, settings, API routes and the trigger script.

A1111 puts the extension folder on sys.path only while this file runs, so the package is imported here at the top.
"""
import gradio as gr

from modules import script_callbacks, scripts, shared

import lib_storyboard.adapters.a1111_api as sb_api
import lib_storyboard.adapters.a1111_host as sb_host
import lib_storyboard.adapters.a1111_ui as sb_ui


def on_ui_settings():
    section = ("storyboard", "Storyboard")
    shared.opts.add_option("storyboard_model", shared.OptionInfo(
        "Last trained", "Storyboard model used by <cu_trg>, <ms_trg>, <fs_trg>", gr.Dropdown,
        lambda: {"choices": ["Last trained"] + [m.name for m in sb_host.list_models()]},
        refresh=lambda: None, section=section))
    shared.opts.add_option("storyboard_apply_lora", shared.OptionInfo(
        True, "Apply the model's style LoRA when a prompt has a shot trigger", section=section))
    shared.opts.add_option("storyboard_lora_weight", shared.OptionInfo(
        1.0, "Style LoRA weight", gr.Slider, {"minimum": 0.0, "maximum": 2.0, "step": 0.05}, section=section))


script_callbacks.on_ui_settings(on_ui_settings)
script_callbacks.on_ui_tabs(sb_ui.build_tab)
script_callbacks.on_app_started(lambda demo, app: sb_api.add_routes(app))


class StoryboardTriggers(scripts.Script):
    """Makes <cu_trg>/<ms_trg>/<fs_trg> in a prompt apply a trained storyboard model's tokens and style."""

    def title(self):
        return "Storyboard triggers"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        with gr.Accordion("Storyboard triggers", open=False):
            model = gr.Dropdown(label="Storyboard model for the shot triggers", value=sb_host.SETTING_DEFAULT,
                                choices=[sb_host.SETTING_DEFAULT] + [m.name for m in sb_host.list_models()],
                                allow_custom_value=True,
                                elem_id=self.elem_id("model"))
        self.infotext_fields = [(model, "Storyboard model")]
        self.paste_field_names = ["Storyboard model"]
        return [model]

    def process(self, p, model=None, *args):
        sb_host.apply_triggers(p, model)

    def process_batch(self, p, *args, **kwargs):
        sb_host.register_vectors(p)

    def postprocess(self, p, processed, *args):
        sb_host.unregister_vectors(p)
