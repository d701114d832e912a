"""The Board section of the Storyboard tab: a scene list (typed, pasted or loaded from a file) and the board's
options → a board drawn panel by panel through txt2img, with the host's progress bar, Interrupt and Skip; a board
from the list reloads for editing, and one panel can be redrawn with a new seed."""
import html
import os

import gradio as gr
from modules import sd_samplers, shared
from modules.call_queue import wrap_gradio_gpu_call
from PIL import Image

from ..board.options import BoardOptions
from ..board.scenes import editable_text
from ..board.writer import board_images, load_board
from ..detailer.args import SCRIPT_TITLE as DETAILER_TITLE
from . import board_jobs, controlnet_bridge, settings
from .forms import component
from .paths import list_models, public_path

# The board options the section shows, in this order (the handlers receive them in this order too).
KNOBS = ("title", "prefix", "negative", "seed_policy", "seed", "steps", "cfg", "width", "height", "columns",
         "panel_width", "panels_per_page", "font_size", "font_path")
COMPOSITION = board_jobs.COMPOSITION_KEYS   # after KNOBS; shown only with sd-webui-controlnet
FORMATS = ("auto", "lines", "csv", "json")
EXAMPLE = ('CU | a girl looks up at the rain | "It\'s here."\nMS | she opens her umbrella | "Finally."\n'
           '- | the empty street at dawn |\nFS | she runs to the bus stop | "Wait!"')


def _sentences(msgs) -> str:
    return "".join(f"<p class='storyboard-error'>{html.escape(m)}</p>" for m in msgs)


def _board_view(name: str):
    """The board picture, its panels (None for those not drawn) and the files, for a board folder's name."""
    folder = board_jobs.board_folder(name)
    board = load_board(folder)
    with Image.open(os.path.join(folder, "board.png")) as im:
        picture = im.copy()
    panels = [(im, p.label) for p, im in zip(board.plans(), board_images(folder, board)) if im is not None]
    files = "".join(f"<li>{html.escape(public_path(os.path.join(folder, f)))}</li>"
                    for f in ("board.png", "board.pdf", "board.json"))
    return board, picture, panels, f"<ul>{files}</ul>"


def _choices():
    return gr.update(choices=[b["name"] for b in board_jobs.list_boards()])


def _result(job):
    """What the section shows after a board or redraw job."""
    if job.state == "failed":
        return None, [], _choices(), _sentences(job.errors[:1])
    name = job.report.get("board", "")
    if not name:
        return None, [], _choices(), f"<p>{html.escape(job.message)}</p>"
    _, picture, panels, files = _board_view(name)
    warnings = _sentences(job.report.get("warnings", []))
    # The status comes last: the host's call wrapper appends its timing to the last output.
    return picture, panels, gr.update(choices=[b["name"] for b in board_jobs.list_boards()], value=name), \
        f"<p>{html.escape(job.message)}</p>{warnings}{files}"


def request_from_ui(scenes, fmt, sampler, model, detailer, cn_model, *values) -> dict:
    """`values`: the KNOBS, then the COMPOSITION options."""
    body = {"scenes": scenes or "", "format": fmt, "sampler_name": sampler, "storyboard_model": model,
            "detailer": bool(detailer)}
    body.update(zip(KNOBS + COMPOSITION, values))
    if cn_model:   # used when the composition or a scene's own pose needs it, ignored otherwise
        body["controlnet_model"] = cn_model
    return body


def draw_from_ui(id_task, scenes, fmt, sampler, model, detailer, cn_model, *values):
    """Runs inside the host's wrap_gradio_gpu_call: the queue lock is held and the progress task is set."""
    try:
        req = board_jobs.validate_board_request(request_from_ui(scenes, fmt, sampler, model, detailer, cn_model,
                                                                *values))
    except board_jobs.BoardRequestError as e:
        return None, [], _choices(), _sentences(e.errors.values())
    m = board_jobs.manager()
    job = m.run_inline(m.new_job(req), lambda j: board_jobs.run_board(j, take_lock=False))
    return _result(job)


def redraw_from_ui(id_task, name, panel, seed):
    try:
        req = board_jobs.validate_redraw(name, int(panel or 0), int(seed) if seed not in (None, "") else None)
    except board_jobs.BoardRequestError as e:
        return None, [], _choices(), _sentences(e.errors.values())
    m = board_jobs.manager()
    job = m.run_inline(m.new_job(req), lambda j: board_jobs.run_redraw(j, take_lock=False))
    return _result(job)


def load_from_ui(name):
    """Board list → the editor: the scene list as text, every option, the board and its panels."""
    keep = [gr.update()] * (6 + len(KNOBS) + len(COMPOSITION))
    try:
        board, picture, panels, files = _board_view(name)
    except (OSError, ValueError) as e:
        return [*keep, None, [], _sentences([str(e)])]
    text, fmt = editable_text(board.scenes)
    host = board.model.get("host", {})
    detailer = any(str(k).lower() == DETAILER_TITLE.lower() for k in host.get("alwayson_scripts", {}))
    options = board.options.to_dict()
    note = f"<p>Loaded board {html.escape(name)}: {len(board.scenes.scenes)} panels.</p>"
    if board.not_drawn:
        note += f"<p>Not drawn yet: panels {', '.join(map(str, sorted(board.not_drawn)))}.</p>"
    return [text, fmt, gr.update(value=host.get("sampler_name", board_jobs.DEFAULT_SAMPLER)),
            gr.update(value=host.get("storyboard_model", settings.FROM_SETTINGS)), detailer,
            gr.update(value=host["controlnet_model"]) if host.get("controlnet_model") else gr.update(),
            *[options[k] for k in KNOBS + COMPOSITION], picture, panels, note + files]


def upload_ui(file):
    """A scene list file → the text box and its format (from the extension)."""
    if file is None:
        return gr.update(), gr.update(), ""
    path = file.name if hasattr(file, "name") else str(file)
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except UnicodeDecodeError:
        return gr.update(), gr.update(), _sentences([f"{os.path.basename(path)} is not UTF-8 text."])
    fmt = {".csv": "csv", ".json": "json"}.get(os.path.splitext(path)[1].lower(), "auto")
    return text, fmt, ""


def build_board_section():
    defaults = BoardOptions().to_dict()
    samplers = [s.name for s in sd_samplers.visible_samplers()]
    models = [settings.FROM_SETTINGS] + [m.name for m in list_models()]
    dummy = gr.Label(visible=False)
    with gr.Row():
        with gr.Column(scale=3):
            gr.HTML("<p>One scene a line: <code>shot | description | dialogue [| seed] [| pose]</code>, where the "
                    "shot is cu, ms, fs or - (inserts, establishing shots) and the pose (standing, sitting, walking, "
                    "two, or none; needs sd-webui-controlnet) overrides the board's composition for that panel; or "
                    "a CSV with the columns shot, description, dialogue (seed, negative, pose), or JSON. Each panel "
                    "is drawn by txt2img with the shot's trigger, so the storyboard model and the always-on scripts "
                    "apply.</p>")
            scenes = gr.Textbox(label="Scene list", lines=8, placeholder=EXAMPLE, elem_id="storyboard_board_scenes")
            with gr.Row():
                upload = gr.UploadButton("Load a scene list file", file_types=[".csv", ".json", ".txt"],
                                         elem_id="storyboard_board_upload")
                fmt = gr.Dropdown(label="Format", choices=list(FORMATS), value="auto", elem_id="storyboard_board_format")
            widgets = {}

            def add(key, value=None, **kw):
                widgets[key] = component(BoardOptions, key, defaults[key] if value is None else value,
                                         f"storyboard_board_{key}", **kw)

            add("title")
            add("prefix")
            add("negative")
            with gr.Row():
                add("seed_policy")
                add("seed")
            with gr.Accordion("Generation", open=False):
                with gr.Row():
                    add("steps")
                    add("cfg")
                with gr.Row():
                    add("width")
                    add("height")
                with gr.Row():
                    sampler = gr.Dropdown(label="Sampler", choices=samplers, value=board_jobs.DEFAULT_SAMPLER,
                                          elem_id="storyboard_board_sampler")
                    model = gr.Dropdown(label="Storyboard model", choices=models, value=settings.FROM_SETTINGS,
                                        allow_custom_value=True, elem_id="storyboard_board_model")
                detailer = gr.Checkbox(label="Run the Storyboard detailer on each panel (its first pass, with its "
                                             "defaults)", value=False, elem_id="storyboard_board_detailer")
                # Composition: each panel's pose, framed as its shot, sent to sd-webui-controlnet when installed.
                has_cn = controlnet_bridge.available()
                poses = controlnet_bridge.openpose_models() if has_cn else []
                with gr.Row(visible=has_cn):
                    add("composition")
                    add("composition_weight")
                    cn_model = gr.Dropdown(label="ControlNet model", choices=poses or controlnet_bridge.models(),
                                           value=(poses or [None])[0], allow_custom_value=True,
                                           elem_id="storyboard_board_controlnet_model")
                if not has_cn:
                    gr.HTML("<p>Composition (a pose per panel) needs the sd-webui-controlnet extension.</p>",
                            elem_id="storyboard_board_composition_note")
            with gr.Accordion("Layout", open=False):
                with gr.Row():
                    add("columns")
                    add("panel_width")
                with gr.Row():
                    add("panels_per_page")
                    add("font_size")
                add("font_path", value=settings.get(settings.OPT_BOARD_FONT, "") or "")
            with gr.Row():
                draw = gr.Button("Draw board", variant="primary", elem_id="storyboard_board_draw")
                interrupt = gr.Button("Interrupt", elem_id="storyboard_board_interrupt")
                skip = gr.Button("Skip panel", elem_id="storyboard_board_skip")
            status = gr.HTML(elem_id="storyboard_board_status")
            gr.HTML(elem_id="storyboard_board_progress")
        with gr.Column(scale=2):
            picture = gr.Image(label="Board", type="pil", interactive=False, elem_id="storyboard_board_image")
            panels = gr.Gallery(label="Panels", columns=3, elem_id="storyboard_board_panels")
            with gr.Row():
                boards = gr.Dropdown(label="Boards", choices=[b["name"] for b in board_jobs.list_boards()],
                                     elem_id="storyboard_board_list", scale=3)
                refresh = gr.Button("Refresh", elem_id="storyboard_board_refresh", scale=1)
                load = gr.Button("Load", elem_id="storyboard_board_load", scale=1)
            with gr.Row():
                panel = gr.Number(label="Panel", value=1, precision=0, elem_id="storyboard_board_panel")
                seed = gr.Number(label="New seed (-1: random)", value=-1, precision=0,
                                 elem_id="storyboard_board_new_seed")
                redraw = gr.Button("Redraw panel", elem_id="storyboard_board_redraw")

    knobs = [widgets[k] for k in KNOBS + COMPOSITION]
    outputs = [picture, panels, boards, status]
    draw.click(wrap_gradio_gpu_call(draw_from_ui, extra_outputs=[None, [], gr.update()]),
               _js="storyboard_start_board", inputs=[dummy, scenes, fmt, sampler, model, detailer, cn_model] + knobs,
               outputs=outputs)
    redraw.click(wrap_gradio_gpu_call(redraw_from_ui, extra_outputs=[None, [], gr.update()]),
                 _js="storyboard_start_board", inputs=[dummy, boards, panel, seed], outputs=outputs)
    interrupt.click(lambda: shared.state.interrupt(), inputs=[], outputs=[])
    skip.click(lambda: shared.state.skip(), inputs=[], outputs=[])
    refresh.click(_choices, inputs=[], outputs=[boards])
    load.click(load_from_ui, inputs=[boards], outputs=[scenes, fmt, sampler, model, detailer, cn_model] + knobs +
               [picture, panels, status])
    upload.upload(upload_ui, inputs=[upload], outputs=[scenes, fmt, status])
