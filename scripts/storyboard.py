"""sd-webui-storyboard in the host: the Storyboard tab, the settings, the /storyboard/v1 routes and the shot triggers.

A1111 puts the extension folder on sys.path only while this file runs, so the package is imported here at the top.
Everything it registers lives in lib_storyboard/webui/.
"""
import gradio as gr
from modules import script_callbacks, scripts

from lib_storyboard.webui import api_routes, settings, train_tab, triggers
from lib_storyboard.webui.paths import list_models

script_callbacks.on_ui_settings(settings.add_settings)
script_callbacks.on_ui_tabs(train_tab.build_tab)
script_callbacks.on_app_started(lambda demo, app: api_routes.on_app_started(app))


class StoryboardTriggers(scripts.Script):
    """Makes <cu_trg>/<ms_trg>/<fs_trg> in a prompt apply a trained storyboard model's tokens and style."""

    def title(self):
        return "Storyboard triggers"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        with gr.Accordion("Storyboard triggers", open=False):
            model = gr.Dropdown(label="Storyboard model for the shot triggers", value=settings.FROM_SETTINGS,
                                choices=[settings.FROM_SETTINGS] + [m.name for m in list_models()],
                                allow_custom_value=True, elem_id=self.elem_id("model"))
        self.infotext_fields = [(model, "Storyboard model")]
        self.paste_field_names = ["Storyboard model"]
        return [model]

    def process(self, p, model=None, *args):
        triggers.apply_triggers(p, model)

    def process_batch(self, p, *args, **kwargs):
        triggers.register_vectors(p)

    def postprocess(self, p, processed, *args):
        triggers.unregister_vectors(p)
