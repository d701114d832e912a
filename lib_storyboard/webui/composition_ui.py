"""Composition in the UI: the pose controls in txt2img's Storyboard triggers accordion, and the Compose section of
the Storyboard tab, which draws a pose at a shot's framing (or extracts one from a reference photo), shows it, and
sends it to txt2img's controls. The pose reaches ControlNet through composition_hooks when txt2img draws."""
import html

import gradio as gr

from ..composition import POSES
from ..shots import BY_KEY, SHOTS
from . import composition_hooks, controlnet_bridge

NOTE_MISSING = ("Composition (a pose per shot, through ControlNet) needs the sd-webui-controlnet extension and an "
                "openpose ControlNet model.")
SOURCES = ("Drawn pose", "Reference photo")
_txt2img: dict = {}      # the txt2img accordion's pose widgets, for the Compose section's Send button


def triggers_controls(script, is_img2img: bool, accordion) -> list:
    """The pose widgets inside the Storyboard triggers accordion, in composition_hooks.ARG_NAMES order. Without
    sd-webui-controlnet they are hidden (their values still fill the script's arguments) and a note says why."""
    has_cn = controlnet_bridge.available()
    poses = controlnet_bridge.openpose_models() if has_cn else []
    with gr.Row(visible=has_cn):
        composition = gr.Dropdown(label="Composition (ControlNet pose, framed as the prompt's shot trigger)",
                                  choices=list(composition_hooks.CHOICES), value="none",
                                  elem_id=script.elem_id("composition"))
        weight = gr.Slider(label="Composition weight", minimum=0.0, maximum=composition_hooks.WEIGHT_MAX, step=0.05,
                           value=1.0, elem_id=script.elem_id("composition_weight"))
        model = gr.Dropdown(label="ControlNet model", choices=poses or controlnet_bridge.models(),
                            value=(poses or [None])[0], allow_custom_value=True,
                            elem_id=script.elem_id("controlnet_model"))
    image = gr.Image(label="Reference pose (OpenPose image; used when the composition is 'reference')", type="pil",
                     visible=has_cn, height=256, elem_id=script.elem_id("pose_image"))
    if not has_cn:
        gr.HTML(f"<p>{html.escape(NOTE_MISSING)}</p>", elem_id=script.elem_id("composition_note"))
    if not is_img2img:
        _txt2img.update(composition=composition, image=image, accordion=accordion)
    return [composition, weight, model, image]


def make_pose(source, pose, shot, width, height, reference):
    """Compose section → (the pose image, status)."""
    try:
        if source == SOURCES[1] and reference is None:
            raise ValueError("Choose a reference photo first.")
        image = composition_hooks.make_pose(pose, shot, int(width), int(height),
                                            reference if source == SOURCES[1] else None)
    except ValueError as e:
        return None, f"<p class='storyboard-error'>{html.escape(str(e))}</p>"
    note = ("The pose from the photo, as it is framed there." if source == SOURCES[1] else
            f"'{pose}' framed as a {BY_KEY[shot].label}.")
    return image, f"<p>{html.escape(note)}</p>"


def send_to_txt2img(source, pose, image):
    """The pose to txt2img's Storyboard triggers accordion, opened so the choice shows: a drawn pose by name (txt2img
    frames it as each prompt's shot trigger), an extracted one as the reference image."""
    if source == SOURCES[1]:
        if image is None:
            return gr.update(), gr.update(), gr.update(), \
                "<p class='storyboard-error'>Make the pose from the photo first.</p>"
        return composition_hooks.REFERENCE, image, gr.update(open=True), \
            "<p>Sent to txt2img as the reference pose; it is used as it is, whatever the prompt's shot.</p>"
    return pose, gr.update(), gr.update(open=True), (
        f"<p>txt2img's composition is now '{html.escape(pose)}': a prompt with <code>&lt;cu_trg&gt;</code>, "
        f"<code>&lt;ms_trg&gt;</code> or <code>&lt;fs_trg&gt;</code> gets it at that shot's framing.</p>")


def build_compose_section():
    has_cn = controlnet_bridge.available()
    with gr.Row():
        with gr.Column(scale=3):
            gr.HTML("<p>A pose for ControlNet's openpose model: one of the drawn poses at a shot's framing, or the "
                    "pose of the people in your own photo. <b>Send to txt2img</b> makes txt2img use it for every "
                    "prompt with a shot trigger; boards take a pose per scene (the Board section's help says "
                    "how).</p>")
            source = gr.Radio(label="Pose from", choices=list(SOURCES), value=SOURCES[0],
                              elem_id="storyboard_compose_source")
            with gr.Row():
                pose = gr.Dropdown(label="Pose", choices=list(POSES), value="standing",
                                   elem_id="storyboard_compose_pose")
                shot = gr.Dropdown(label="Shot (the preview's framing)", choices=[s.key for s in SHOTS], value="ms",
                                   elem_id="storyboard_compose_shot")
            with gr.Row():
                width = gr.Slider(label="Width", minimum=64, maximum=2048, step=8, value=512,
                                  elem_id="storyboard_compose_width")
                height = gr.Slider(label="Height", minimum=64, maximum=2048, step=8, value=512,
                                   elem_id="storyboard_compose_height")
            reference = gr.Image(label="Reference photo (the OpenPose detector's weights download from the Hugging "
                                       "Face hub on first use)", type="pil", elem_id="storyboard_compose_reference")
            with gr.Row():
                make = gr.Button("Make pose", variant="primary", elem_id="storyboard_compose_make")
                send = gr.Button("Send to txt2img", visible=has_cn and bool(_txt2img),
                                 elem_id="storyboard_compose_send")
            if not has_cn:
                gr.HTML(f"<p>{html.escape(NOTE_MISSING)} The pose can still be made here and saved.</p>",
                        elem_id="storyboard_compose_note")
            status = gr.HTML(elem_id="storyboard_compose_status")
        with gr.Column(scale=2):
            result = gr.Image(label="Pose", type="pil", interactive=False, elem_id="storyboard_compose_result")
    make.click(make_pose, inputs=[source, pose, shot, width, height, reference], outputs=[result, status])
    if has_cn and _txt2img:
        # switch_to_txt2img (the WebUI's own script) opens the txt2img tab and passes the inputs on unchanged
        send.click(send_to_txt2img, _js="switch_to_txt2img", inputs=[source, pose, result],
                   outputs=[_txt2img["composition"], _txt2img["image"], _txt2img["accordion"], status])
