"""Detailer arguments: the API form, validation errors naming the field, schema, infotext round trip."""
import copy
import json

import pytest

from lib_storyboard.detailer.args import (
    DetailerArgsError, DetailerRun, PassArgs, from_infotext, json_schema, parse_api_args, parse_pass,
    parse_script_args, pass_from_infotext, pass_to_infotext, to_infotext)
from lib_storyboard.detailer.form import form_keys, form_to_pass, pass_to_form


def test_defaults_mean_something_sensible():
    p = PassArgs()
    assert (p.enabled, p.confidence, p.denoise, p.inpaint_only_masked, p.padding) == (True, 0.3, 0.4, True, 32)
    assert (p.inpaint_width, p.inpaint_height, p.match_box) == (512, 512, False)
    assert (p.steps, p.cfg_scale, p.sampler, p.clip_skip) == (None, None, None, None)
    assert p.shot_swap and p.merge == "none" and p.top_k == 0 and p.prompt == ""
    assert p.kind() == "face"
    assert PassArgs(detector="hand_yolov8n.pt").kind() == "hand"
    assert PassArgs(detector="mediapipe_face_mesh").kind() == "face"
    assert PassArgs(detector="person_yolov8n-seg.pt").kind() == "person"
    assert PassArgs(detector="mine.pt").kind() == "other"
    assert PassArgs(detector="mine.pt", region_kind="hand").kind() == "hand"


def test_api_form_parses_and_never_mutates_its_input():
    args = [True, {"detector": "mediapipe_face_full", "denoise": 0.5, "prompt": "a [SEP] b"},
            {"detector": "hand_yolov8n.pt", "enabled": False}]
    before = copy.deepcopy(args)
    enabled, passes = parse_api_args(args)
    assert args == before
    assert enabled is True and len(passes) == 2
    assert passes[0].detector == "mediapipe_face_full" and passes[0].denoise == 0.5
    assert passes[1].enabled is False
    assert parse_api_args([False, {}])[0] is False
    assert parse_api_args([{}])[0] is True                # no leading switch: enabled
    assert parse_api_args([True, None, {}])[1] == [PassArgs()]   # API slots left empty are skipped
    assert parse_api_args([]) == (True, [])


@pytest.mark.parametrize("bad, pattern", [
    ({"detecter": "x.pt"}, r"pass 2: 'detecter' is not a detailer pass option\."),
    ({"confidence": 1.5}, r"pass 2: 'confidence' must be between 0 and 1\."),
    ({"denoise": "much"}, r"pass 2: 'denoise' must be a number, not 'much'\."),
    ({"merge": "union"}, r"pass 2: 'merge' must be one of 'none', 'merge', 'merge_invert', not 'union'\."),
    ({"order": "random"}, r"pass 2: 'order' must be one of"),
    ({"top_k": 2.5}, r"pass 2: 'top_k' must be an integer, not 2\.5\."),
    ({"padding": True}, r"pass 2: 'padding' must be an integer, not True\."),
    ({"inpaint_width": 500}, r"pass 2: 'inpaint_width' must be a multiple of 8\."),
    ({"inpaint_height": 32}, r"pass 2: 'inpaint_height' must be between 64 and 2048\."),
    ({"min_ratio": 0.5, "max_ratio": 0.1}, r"pass 2: 'max_ratio' must not be below min_ratio\."),
    ({"steps": 0}, r"pass 2: 'steps' must be between 1 and 150\."),
    ({"detector": ""}, r"pass 2: 'detector' must not be empty\."),
    ("face_yolov8n.pt", r"pass 2: expected a settings object, got str"),
])
def test_bad_values_name_the_pass_and_field(bad, pattern):
    with pytest.raises(DetailerArgsError, match=pattern) as e:
        parse_api_args([True, {}, bad])
    assert str(e.value).count(". ") == 0 and str(e.value).endswith(".")  # one sentence
    assert str(e.value).startswith("Storyboard detailer pass 2:")


def test_a_second_boolean_is_refused():
    with pytest.raises(DetailerArgsError, match="argument 2 is a boolean"):
        parse_api_args([True, False, {}])


def test_models_are_immutable():
    p = PassArgs()
    with pytest.raises(TypeError):
        p.denoise = 0.9
    assert parse_pass(p) is p


def test_schema_lists_every_field_with_default_and_forbids_extras():
    s = json_schema()
    items = s["items"]
    json.dumps(s)  # serialisable for the route
    assert items["additionalProperties"] is False
    assert set(items["properties"]) == set(PassArgs.__fields__)
    assert items["properties"]["denoise"]["default"] == 0.4
    assert items["properties"]["merge"]["enum"] == ["none", "merge", "merge_invert"]
    assert "Storyboard detailer" in s["description"]


def test_infotext_round_trip_keeps_only_non_defaults():
    p = PassArgs(detector="mediapipe_face_mesh", prompt='close, "quoted" [SEP] [PROMPT], <lora:x:0.7>',
                 negative_prompt="blurry", denoise=0.55, steps=12, sampler="Euler a", y_offset=-3,
                 merge="merge_invert", shot_swap=False, min_ratio=0.01)
    text = pass_to_infotext(p)
    assert "padding" not in text and "\n" not in text
    assert pass_from_infotext(text) == p
    assert pass_from_infotext(pass_to_infotext(PassArgs())) == PassArgs()
    assert json.loads(pass_to_infotext(PassArgs())) == {"detector": "face_yolov8n.pt"}


def test_infotext_entries_per_pass_round_trip():
    passes = [PassArgs(denoise=0.3), PassArgs(enabled=False), PassArgs(detector="hand_yolov8n.pt", top_k=2)]
    entries = to_infotext(passes)
    assert sorted(entries) == ["Storyboard detailer 1", "Storyboard detailer 3"]
    params = {"Steps": "20", **entries}
    assert from_infotext(params) == [(1, passes[0]), (3, passes[2])]
    with pytest.raises(DetailerArgsError, match="pass 4: the infotext value is not valid JSON"):
        from_infotext({"Storyboard detailer 4": "{broken"})
    with pytest.raises(DetailerArgsError, match="pass 2: 'zzz' is not a detailer pass option"):
        from_infotext({"Storyboard detailer 2": '{"zzz": 1}'})


def test_script_slots_with_detail_only_switch():
    p1 = {"detector": "mediapipe_face_short"}
    off = {"detector": "mediapipe_face_short", "enabled": False}
    # The UI's slots: [enabled, pass 1, pass 2, detail_only].
    run = parse_script_args([True, p1, off, True])
    assert run.enabled and run.detail_only and len(run.passes) == 2 and run.active
    # An API call [true, {pass 1}, true] lands on the slots as [true, {pass 1}, true, <default False>].
    run = parse_script_args([True, p1, True, False])
    assert run.detail_only and run.passes == [PassArgs(**p1)]
    assert not parse_script_args([True, p1, off, False]).detail_only
    assert not parse_script_args([False, p1]).active
    assert not parse_script_args([True, off]).active
    assert parse_script_args([]) == DetailerRun(True, [], False)
    with pytest.raises(DetailerArgsError, match=r"argument 3\) must be the last argument"):
        parse_script_args([True, p1, True, {}], strict=True)
    with pytest.raises(DetailerArgsError, match="3 passes were given but this host allows at most 2"):
        parse_script_args([True, p1, p1, p1], max_passes=2, strict=True)
    parse_script_args([True, p1, p1, p1], max_passes=2)  # the host's own slots are never over-long; no error
    with pytest.raises(DetailerArgsError, match="pass 1: 'denoise' must be between"):
        parse_script_args([False, {"denoise": 3}, True])


def test_schema_names_the_pass_limit():
    s = json_schema(3)
    assert s["maxPasses"] == 3 and s["maxItems"] == 5 and "detail_only" in s["description"]
    assert "maxPasses" not in json_schema()


def test_form_round_trip_covers_every_field():
    keys = form_keys()
    assert set(PassArgs.__fields__) < set(keys) and "use_steps" in keys
    for p in (PassArgs(), PassArgs(steps=12, cfg_scale=4.5, sampler="Euler", clip_skip=2, denoise=0.55),
              PassArgs(enabled=False, detector="hand_yolov8n.pt", merge="merge_invert", top_k=2)):
        form = pass_to_form(p)
        assert sorted(form) == sorted(keys)
        assert PassArgs(**form_to_pass(keys, [form[k] for k in keys])) == p
    form = pass_to_form(PassArgs())
    assert form["use_steps"] is False and form["steps"] == 20       # the shown value while the switch is off
    form.update(use_steps=True, steps=30.0, padding=16.0)           # sliders hand back floats
    d = form_to_pass(keys, [form[k] for k in keys])
    assert d["steps"] == 30 and isinstance(d["steps"], int) and d["padding"] == 16 and d["cfg_scale"] is None
