"""Scene lists in the three formats, and every kind of bad row answered with its own sentence, all at once."""
import json

import pytest

from lib_storyboard.board.options import BoardError, BoardOptions
from lib_storyboard.board.scenes import MAX_SCENES, SceneError, parse_scenes, read_scenes

LINES = """# scene list
CU | a girl looks up at the rain | "It's here."
medium shot | she opens her umbrella | "Finally."
Full Shot | she walks into the street |
- | the empty street, rain | | 7
close-up | her face | "Wait!" | 12
"""


def test_lines_csv_and_json_give_the_same_scenes(tmp_path):
    (tmp_path / "s.txt").write_text(LINES, encoding="utf-8")
    (tmp_path / "s.csv").write_text(
        "\ufeffShot,Description,Dialogue,Seed\n"
        'CU,a girl looks up at the rain,"""It\'s here."""\n'
        'medium shot,she opens her umbrella,"""Finally."""\n'
        "Full Shot,she walks into the street,\n"
        "-,\"the empty street, rain\",,7\n"
        'close-up,her face,"""Wait!""",12\n', encoding="utf-8")
    (tmp_path / "s.json").write_text(json.dumps({"prefix": "girl in a yellow coat", "negative": "blurry", "scenes": [
        {"shot": "CU", "description": "a girl looks up at the rain", "dialogue": '"It\'s here."'},
        {"shot": "medium shot", "description": "she opens her umbrella", "dialogue": '"Finally."'},
        {"shot": "Full Shot", "description": "she walks into the street"},
        {"shot": None, "description": "the empty street, rain", "seed": 7},
        {"shot": "close-up", "description": "her face", "dialogue": '"Wait!"', "seed": "12"}]}), encoding="utf-8")
    lists = [read_scenes(str(tmp_path / n)) for n in ("s.txt", "s.csv", "s.json")]
    assert lists[0].scenes == lists[1].scenes == lists[2].scenes
    s = lists[0].scenes
    assert [x.shot for x in s] == ["cu", "ms", "fs", None, "cu"]
    assert [x.number for x in s] == [1, 2, 3, 4, 5]
    assert s[0].dialogue == '"It\'s here."' and s[2].dialogue == "" and s[3].seed == 7 and s[4].seed == 12
    assert lists[2].shared == {"prefix": "girl in a yellow coat", "negative": "blurry"}


def test_a_plain_json_list_and_two_column_lines_are_enough():
    assert parse_scenes('[{"shot": "fs", "description": "a hill"}]', "json").scenes[0].shot == "fs"
    assert parse_scenes("none | a door opens", "lines").scenes[0].dialogue == ""


BAD_LINES = """CU | a girl | "hi"
XL | a tree | "no"
ms |   | "empty"
fs | a road | "x" | abc
cu | a cat | "a" | 5 | sitting | extra
just some words
fs | a dog | "y" | -4
"""


def test_every_bad_line_gets_its_own_sentence_in_one_go():
    with pytest.raises(SceneError) as e:
        parse_scenes(BAD_LINES, "lines")
    errors = e.value.errors
    assert errors == [
        "Line 2: unknown shot 'XL'; use cu, ms, fs (or close-up, medium shot, full shot), or none or - for no shot.",
        "Line 3: the description is empty.",
        "Line 4: 'abc' after the dialogue is neither a seed (a whole number) nor a pose (standing, sitting, walking, "
        "two, none).",
        "Line 5: 6 columns, but a line takes at most 5 (shot | description | dialogue | seed | pose); a '|' inside "
        "the dialogue splits it.",
        "Line 6: expected shot | description | dialogue, got no '|'.",
        "Line 7: the seed -4 is outside 0 to 4294967295.",
    ]


@pytest.mark.parametrize("text, fmt, sentence", [
    ("[1, 2", "json", "The scene list is not valid JSON (Expecting ',' delimiter at line 1, column 6)."),
    ('"scenes"', "json", "The scene list must be a JSON list of scenes or an object with 'scenes', not text."),
    ("42", "json", "The scene list must be a JSON list of scenes or an object with 'scenes', not a number."),
    ('{"prefix": "x"}', "json", "The scene list object needs 'scenes', a list of scene objects."),
    ('{"scenes": [], "style": 1}', "json", "The scene list object takes prefix, negative and scenes, not 'style'."),
    ('["cu | a girl"]', "json", "Scene 1 must be an object with shot, description and dialogue, not text."),
    ('[{"shot": "cu", "desc": "x"}]', "json",
     "Scene 1: 'desc' is not a scene field (use shot, description, dialogue, seed, negative, pose)."),
    ('[{"shot": "cu", "description": 5}]', "json", "Scene 1: 'description' must be text, not 5."),
    ('[{"shot": "cu", "description": "x", "seed": 1.5}]', "json", "Scene 1: the seed must be a whole number, not 1.5."),
    ("[]", "json", "The scene list has no scenes."),
    ("# only a comment\n\n", "lines", "The scene list has no scenes."),
    ("shot,text\ncu,a girl\n", "csv", "The CSV's header row must name the columns shot, description, dialogue (and "
     "optionally seed, negative, pose), but it lacks description, dialogue; has unknown columns 'text'."),
    ("cu,a girl,hi\n", "csv", "The CSV's header row must name the columns shot, description, dialogue (and "
     "optionally seed, negative, pose), but it lacks shot, description, dialogue; has unknown columns 'cu', "
     "'a girl', 'hi'."),
    ("shot,description,dialogue\ncu,a girl,hi,there\n", "csv",
     "Row 2: 4 columns, but the header names 3; quote text that holds a comma."),
    ("shot,description,dialogue\nwide,a girl,hi\n", "csv",
     "Row 2: unknown shot 'wide'; use cu, ms, fs (or close-up, medium shot, full shot), or none or - for no shot."),
])
def test_bad_lists_are_one_sentence(text, fmt, sentence):
    with pytest.raises(SceneError) as e:
        parse_scenes(text, fmt)
    assert e.value.errors == [sentence]


def test_too_many_scenes_is_refused():
    with pytest.raises(SceneError) as e:
        parse_scenes("\n".join(f"cu | scene {i}" for i in range(MAX_SCENES + 1)), "lines")
    assert e.value.errors == [f"The scene list has {MAX_SCENES + 1} scenes; a board takes at most {MAX_SCENES}."]


def test_files_that_are_missing_or_not_text_are_one_sentence(tmp_path):
    with pytest.raises(SceneError, match=r"^The scene list .*nope.txt does not exist\.$"):
        read_scenes(str(tmp_path / "nope.txt"))
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00\x81cu | x")
    with pytest.raises(SceneError, match=r"^The scene list bin.txt is not UTF-8 text\.$"):
        read_scenes(str(tmp_path / "bin.txt"))


def test_board_options_declare_their_ranges_and_refuse_bad_values(tmp_path):
    from lib_storyboard.options import ui_spec

    assert ui_spec(BoardOptions, "columns").maximum == 8 and ui_spec(BoardOptions, "seed_policy").widget == "radio"
    with pytest.raises(BoardError) as e:
        BoardOptions.from_dict({"columns": 0, "width": 500, "seed_policy": "random", "font_path": str(tmp_path / "x"),
                                "colour": 1})
    assert e.value.errors == {
        "seed_policy": "'seed_policy' must be one of 'fixed', 'per_panel', not 'random'.",
        "width": "'width' must be a multiple of 8.",
        "columns": "'columns' must be between 1 and 8.",
        "font_path": f"The font file {tmp_path / 'x'} does not exist.",
        "colour": "'colour' is not a board option."}


def test_pasted_text_format_is_recognised_and_a_board_reloads_as_editable_text():
    from lib_storyboard.board.scenes import editable_text, guess_format

    csv_text = "shot,description,dialogue\ncu,a face,\"Hi, you.\"\n"
    json_text = ' [{"shot": "cu", "description": "a face"}]'
    lines_text = "cu | a face, close | \"Hi\"\n"
    assert [guess_format(t) for t in (csv_text, json_text, lines_text, "")] == ["csv", "json", "lines", "lines"]
    for text, fmt in ((csv_text, "csv"), (json_text, "json"), (lines_text, "lines")):
        scenes = parse_scenes(text, fmt)
        again, again_fmt = editable_text(scenes)
        assert parse_scenes(again, again_fmt) == scenes
    with_negative = parse_scenes('[{"shot": "fs", "description": "a street", "negative": "cars"}]', "json")
    assert editable_text(with_negative)[1] == "json"
    assert editable_text(parse_scenes("- | the sea | | 7\nms | a man |", "lines")) == \
        ("- | the sea |  | 7\nms | a man |\n", "lines")


# -- a scene's own pose -------------------------------------------------------------------------------------------
POSED_LINES = """MS | she sits down | "Finally." | sitting
ms | she sits | | 42 | Sitting
CU | he waves | "Hi!" | WALKING | 7
fs | they talk | | none
- | the street |
fs | two at the stop | | 3 | two
"""


def test_a_scenes_pose_in_each_format(tmp_path):
    (tmp_path / "p.txt").write_text(POSED_LINES, encoding="utf-8")
    (tmp_path / "p.csv").write_text(
        "shot,description,dialogue,seed,pose\n"
        'MS,she sits down,"""Finally.""",,sitting\n'
        "ms,she sits,,42,Sitting\n"
        'CU,he waves,"""Hi!""",7,WALKING\n'
        "fs,they talk,,,none\n"
        "-,the street,,,\n"
        "fs,two at the stop,,3,two\n", encoding="utf-8")
    (tmp_path / "p.json").write_text(json.dumps([
        {"shot": "MS", "description": "she sits down", "dialogue": '"Finally."', "pose": "sitting"},
        {"shot": "ms", "description": "she sits", "seed": 42, "pose": "Sitting"},
        {"shot": "CU", "description": "he waves", "dialogue": '"Hi!"', "seed": 7, "pose": "WALKING"},
        {"shot": "fs", "description": "they talk", "pose": "none"},
        {"shot": "-", "description": "the street", "pose": None},
        {"shot": "fs", "description": "two at the stop", "seed": 3, "pose": "two"}]), encoding="utf-8")
    lists = [read_scenes(str(tmp_path / n)) for n in ("p.txt", "p.csv", "p.json")]
    assert lists[0].scenes == lists[1].scenes == lists[2].scenes
    s = lists[0].scenes
    assert [x.pose for x in s] == ["sitting", "sitting", "walking", "none", "", "two"]
    assert [x.seed for x in s] == [None, 42, 7, None, None, 3]
    assert s[0].dialogue == '"Finally."' and s[3].dialogue == ""


def test_the_pose_of_a_list_without_poses_stays_out_of_its_dict():
    scenes = parse_scenes("cu | a face | hi\nfs | a road | | sitting", "lines")
    assert scenes.as_dict() == {"scenes": [
        {"shot": "cu", "description": "a face", "dialogue": "hi", "seed": None, "negative": ""},
        {"shot": "fs", "description": "a road", "dialogue": "", "seed": None, "negative": "", "pose": "sitting"}]}


BAD_POSE_LINES = """cu | a face | "hi" | 4 | 5
ms | a hand | | sitting | walking
fs | a road | "x" | 1.5
- | the street | | walking
none | a door | | none | 3
cu | a cat | | jumping
"""


def test_bad_pose_and_seed_cells_are_one_sentence_each():
    with pytest.raises(SceneError) as e:
        parse_scenes(BAD_POSE_LINES, "lines")
    assert e.value.errors == [
        "Line 1: two seeds ('4' and '5'); a line takes at most one seed and one pose.",
        "Line 2: two poses ('sitting' and 'walking'); a line takes at most one seed and one pose.",
        "Line 3: '1.5' after the dialogue is neither a seed (a whole number) nor a pose (standing, sitting, walking, "
        "two, none).",
        "Line 4: the pose 'walking' needs a shot (cu, ms or fs) to frame it; give the scene a shot or leave its pose "
        "empty.",
        "Line 6: 'jumping' after the dialogue is neither a seed (a whole number) nor a pose (standing, sitting, "
        "walking, two, none).",
    ]


@pytest.mark.parametrize("text, fmt, sentence", [
    ('[{"shot": "cu", "description": "x", "pose": "jumping"}]', "json",
     "Scene 1: unknown pose 'jumping'; use standing, sitting, walking, two, or none for no pose."),
    ('[{"shot": "cu", "description": "x", "pose": 2}]', "json", "Scene 1: 'pose' must be text, not 2."),
    ('[{"shot": null, "description": "x", "pose": "Two"}]', "json",
     "Scene 1: the pose 'two' needs a shot (cu, ms or fs) to frame it; give the scene a shot or leave its pose empty."),
    ("shot,description,dialogue,pose\ncu,a face,,lying\n", "csv",
     "Row 2: unknown pose 'lying'; use standing, sitting, walking, two, or none for no pose."),
    ("shot,description,dialogue,pose\n-,a door,,standing\n", "csv",
     "Row 2: the pose 'standing' needs a shot (cu, ms or fs) to frame it; give the scene a shot or leave its pose "
     "empty."),
])
def test_bad_poses_are_one_sentence(text, fmt, sentence):
    with pytest.raises(SceneError) as e:
        parse_scenes(text, fmt)
    assert e.value.errors == [sentence]


def test_poses_survive_editable_text_and_board_json(tmp_path):
    from lib_storyboard import shots
    from lib_storyboard.board.scenes import editable_text
    from lib_storyboard.board.writer import load_board, write_board
    from lib_storyboard.toyworld.sketches import draw_panel

    scenes = parse_scenes(POSED_LINES, "lines")
    text, fmt = editable_text(scenes)
    assert fmt == "lines" and text.splitlines()[:4] == [
        'ms | she sits down | "Finally." | sitting', "ms | she sits |  | 42 | sitting",
        'cu | he waves | "Hi!" | 7 | walking', "fs | they talk |  | none"]
    assert parse_scenes(text, fmt) == scenes
    with_negative = parse_scenes('[{"shot": "fs", "description": "a road", "negative": "cars", "pose": "two"}]', "json")
    text, fmt = editable_text(with_negative)
    assert fmt == "json" and parse_scenes(text, fmt) == with_negative

    poses = []

    def sketch(prompt, negative, seed, width, height, pose="none"):
        poses.append(pose)
        found = shots.find_triggers(prompt)
        return draw_panel(seed, found[0].key if found else "fs", width).image

    options = BoardOptions(width=64, height=64, composition="standing")
    files = write_board(str(tmp_path), "posed", scenes, options, sketch)
    assert poses == ["sitting", "sitting", "walking", "none", "none", "two"]   # each panel drawn in its own pose
    board = load_board(files.folder)
    assert board.scenes == scenes and [p.pose for p in board.plans()] == poses
    data = json.load(open(files.json, encoding="utf-8"))
    assert [s.get("pose") for s in data["scene_list"]["scenes"]] == ["sitting", "sitting", "walking", "none", None,
                                                                     "two"]
    assert [p.get("pose") for p in data["panels"]] == ["sitting", "sitting", "walking", None, None, "two"]

    # A board without poses writes the board.json it always did: no pose in its scenes or panels, and it reloads.
    plain = write_board(str(tmp_path), "plain", parse_scenes(LINES, "lines"), BoardOptions(width=64, height=64), sketch)
    data = json.load(open(plain.json, encoding="utf-8"))
    assert not any("pose" in d for d in data["scene_list"]["scenes"] + data["panels"])
    assert [s.pose for s in load_board(plain.folder).scenes.scenes] == [""] * 5
