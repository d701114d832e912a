"""The detailer's accordion in txt2img and img2img: one tab of widgets per pass, each pass's widgets folded into
the pass dict the script receives, and the paste fields that restore both from an infotext."""
from typing import Any
from collections.abc import Callable, Sequence

import gradio as gr
from modules import sd_samplers
from modules.ui_components import InputAccordion

from ..detailer.args import DETAIL_ONLY_KEY, SCRIPT_TITLE, PassArgs, from_infotext
from ..detailer.form import OPTIONAL, form_keys, form_to_pass, pass_to_form
from .detectors import default_detector, detector_names
from .forms import component
from .settings import max_passes

def default_pass(number: int) -> PassArgs:
    """Pass 1 is on by default (once the accordion is), later passes off: an API call that sends fewer passes
    than there are slots leaves the rest at these defaults."""
    return PassArgs(enabled=number == 1, detector=default_detector())


def _pass_widgets(script, number: int, samplers: list[str]):
    """Build one pass tab's widgets (labels and ranges from PassArgs' fields); returns [(key, component)] in a
    fixed order. The layout (rows, accordions) is the UI's own."""
    d = pass_to_form(default_pass(number))
    w: list[tuple[str, Any]] = []

    def add(key, **overrides):
        w.append((key, component(PassArgs, key, d[key], script.elem_id(f"p{number}_{key}"), **overrides)))

    with gr.Row():
        add("enabled", label=f"Pass {number} on")
        add("detector", choices=detector_names(), allow_custom_value=True)
        add("region_kind")
    add("prompt")
    add("negative_prompt")
    with gr.Accordion("Detection", open=False):
        with gr.Row():
            add("confidence")
            add("classes")
        with gr.Row():
            add("top_k")
            add("top_k_by")
            add("order")
        with gr.Row():
            add("min_ratio")
            add("max_ratio")
    with gr.Accordion("Mask", open=False):
        with gr.Row():
            add("dilate_erode")
            add("mask_blur")
        with gr.Row():
            add("x_offset")
            add("y_offset")
        add("merge")
    with gr.Accordion("Inpaint", open=False):
        with gr.Row():
            add("denoise")
            add("shot_swap")
        with gr.Row():
            add("inpaint_only_masked")
            add("padding")
        with gr.Row():
            add("inpaint_width")
            add("inpaint_height")
            add("match_box")
        for key in OPTIONAL:    # each override: a "use" switch, then its value
            with gr.Row():
                w.append((f"use_{key}", gr.Checkbox(label=OPTIONAL[key][0], value=d[f"use_{key}"],
                                                    elem_id=script.elem_id(f"p{number}_use_{key}"), scale=1)))
                with gr.Column(scale=3):
                    add(key, **({"choices": samplers} if key == "sampler" else {}))
    if sorted(k for k, _ in w) != sorted(form_keys()):  # a PassArgs field without a widget would never be set
        raise RuntimeError(f"{SCRIPT_TITLE}: the pass widgets and the pass fields differ.")
    return w


def _infotext_passes(params: dict) -> dict[int, PassArgs] | None:
    """Pass number → settings from pasted infotext params; None when the infotext has no detailer entry."""
    found = from_infotext(params)
    return dict(found) if found else None


def build_ui(script, is_img2img: bool) -> list:
    """The accordion; returns the script's argument components `[enabled, state 1..N, detail_only]` and sets the
    script's `infotext_fields` so that pasting an infotext restores every widget and every pass dict."""
    samplers = [s.name for s in sd_samplers.all_samplers]
    n = max_passes()
    states, fields = [], []
    with InputAccordion(False, label=SCRIPT_TITLE, elem_id=script.elem_id("enabled")) as enabled:
        detail_only = gr.Checkbox(
            label="Detail only: skip img2img and detail the init image as it is", value=False,
            visible=is_img2img, elem_id=script.elem_id("detail_only"))
        with gr.Tabs():
            for number in range(1, n + 1):
                with gr.Tab(f"Pass {number}"):
                    widgets = _pass_widgets(script, number, samplers)
                keys = [k for k, _ in widgets]
                comps = [c for _, c in widgets]
                state = gr.State(value=form_to_pass(keys, [c.value for c in comps]))
                update = lambda *values, keys=keys: form_to_pass(keys, values)  # noqa: E731
                for comp in comps:
                    comp.change(fn=update, inputs=comps, outputs=[state], queue=False, show_progress=False)
                states.append(state)
                for key, comp in widgets:
                    fields.append((comp, _paste_widget(number, key)))
                fields.append((state, _paste_state(number, keys)))
    fields.append((enabled, lambda params: _infotext_passes(params) is not None))
    fields.append((detail_only, lambda params: str(params.get(DETAIL_ONLY_KEY, "False")) == "True"))
    script.infotext_fields = fields
    return [enabled, *states, detail_only]


def _pasted_pass(params: dict, number: int) -> PassArgs | None:
    passes = _infotext_passes(params)
    if passes is None:
        return None  # not a detailer infotext: leave the widgets as they are (the accordion closes)
    return passes.get(number, PassArgs(enabled=False))


def _paste_widget(number: int, key: str) -> Callable[[dict], Any]:
    def value(params: dict):
        p = _pasted_pass(params, number)
        return None if p is None else pass_to_form(p)[key]
    return value


def _paste_state(number: int, keys: Sequence[str]) -> Callable[[dict], Any]:
    def value(params: dict):
        p = _pasted_pass(params, number)
        if p is None:
            return None
        w = pass_to_form(p)
        return form_to_pass(keys, [w[k] for k in keys])
    return value
