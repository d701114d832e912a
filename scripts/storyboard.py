"""sd-webui-storyboard in the host: the Storyboard tab, the settings, the /storyboard/v1 routes and the shot triggers.

A1111 puts the extension folder on sys.path only while this file runs, so the package is imported here at the top.
Everything it registers lives in lib_storyboard/webui/.
"""
import gradio as gr
from modules import script_callbacks, scripts

from lib_storyboard.webui import api_routes, composition_hooks, composition_ui, settings, train_tab, triggers
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
        with gr.Accordion("Storyboard triggers", open=False) as accordion:
            model = gr.Dropdown(label="Storyboard model for the shot triggers", value=settings.FROM_SETTINGS,
                                choices=[settings.FROM_SETTINGS] + [m.name for m in list_models()],
                                allow_custom_value=True, elem_id=self.elem_id("model"))
            pose = composition_ui.triggers_controls(self, is_img2img, accordion)
        # a pasted infotext without a composition turns it off rather than keeping the current one
        self.infotext_fields = [(model, "Storyboard model"),
                                (pose[0], lambda d: d.get("Storyboard composition", "none")),
                                (pose[1], lambda d: d.get("Storyboard composition weight", 1.0))]
        self.paste_field_names = ["Storyboard model", "Storyboard composition", "Storyboard composition weight"]
        return [model, *pose]

    def before_process(self, p, model=None, *composition):
        composition_hooks.apply(p, composition)

    def process(self, p, model=None, *args):
        triggers.apply_triggers(p, model)

    def process_batch(self, p, *args, **kwargs):
        triggers.register_vectors(p)

    def postprocess(self, p, processed, *args):
        triggers.unregister_vectors(p)
