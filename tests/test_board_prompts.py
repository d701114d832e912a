"""Each panel's prompt (trigger first, then the shared prefix, then the scene), negative and seed."""
from lib_storyboard.board.options import BoardOptions
from lib_storyboard.board.prompts import plan_board
from lib_storyboard.board.scenes import parse_scenes

SCENES = parse_scenes("CU | a girl looks up | \"It's here.\"\nms | she opens her umbrella | | 99\n"
                      "- | the empty street | \nfull shot | she runs, | \"Wait!\"", "lines")
SCENES_WITH_NEG = parse_scenes('[{"shot": "fs", "description": "a hill", "negative": "text"}]', "json")


def test_trigger_first_then_prefix_then_description():
    plans = plan_board(SCENES, BoardOptions(prefix="girl in a yellow coat, ink sketch"))
    assert [p.prompt for p in plans] == [
        "<cu_trg>, girl in a yellow coat, ink sketch, a girl looks up",
        "<ms_trg>, girl in a yellow coat, ink sketch, she opens her umbrella",
        "girl in a yellow coat, ink sketch, the empty street",        # no shot: no trigger
        "<fs_trg>, girl in a yellow coat, ink sketch, she runs"]
    assert [p.label for p in plans] == ["1 · CU", "2 · MS", "3", "4 · FS"]
    assert [p.file_name for p in plans] == ["panel-001.png", "panel-002.png", "panel-003.png", "panel-004.png"]
    assert plan_board(SCENES, BoardOptions())[0].prompt == "<cu_trg>, a girl looks up"


def test_negative_is_the_shared_one_then_the_scenes():
    assert plan_board(SCENES_WITH_NEG, BoardOptions(negative="blurry"))[0].negative == "blurry, text"
    assert plan_board(SCENES_WITH_NEG, BoardOptions())[0].negative == "text"
    assert plan_board(SCENES, BoardOptions(negative="blurry"))[0].negative == "blurry"


def test_seed_policies_and_a_scenes_own_seed_wins():
    fixed = plan_board(SCENES, BoardOptions(seed=5))
    per_panel = plan_board(SCENES, BoardOptions(seed=5, seed_policy="per_panel"))
    assert [p.seed for p in fixed] == [5, 99, 5, 5]
    assert [p.seed for p in per_panel] == [5, 99, 7, 8]
    wrap = plan_board(SCENES, BoardOptions(seed=2**32 - 1, seed_policy="per_panel"))
    assert [p.seed for p in wrap] == [2**32 - 1, 99, 1, 2]
    assert [p.seed for p in plan_board(SCENES, BoardOptions(seed=5), {3: 1234})] == [5, 99, 1234, 5]


POSED = parse_scenes("cu | a face | | sitting\nms | a hand | | none\nfs | a road |\n- | a door |\n"
                     "none | a wall | | none", "lines")


def test_a_scenes_pose_wins_over_the_composition_and_panels_without_a_shot_get_none():
    from lib_storyboard.board.prompts import controlnet_need

    assert [p.pose for p in plan_board(POSED, BoardOptions())] == ["sitting", "none", "none", "none", "none"]
    assert [p.pose for p in plan_board(POSED, BoardOptions(composition="walking"))] == \
        ["sitting", "none", "walking", "none", "none"]
    assert [p.pose for p in plan_board(SCENES, BoardOptions(composition="two"))] == ["two", "two", "none", "two"]
    # board.json's panels name a pose only where there is one
    assert [p.as_dict().get("pose") for p in plan_board(POSED, BoardOptions(composition="walking"))] == \
        ["sitting", None, "walking", None, None]
    assert "pose" not in plan_board(SCENES, BoardOptions())[0].as_dict()
    # what needs a ControlNet: the composition, else the first scene with a pose of its own
    assert controlnet_need(BoardOptions(composition="two"), POSED) == "The composition 'two'"
    assert controlnet_need(BoardOptions(), POSED) == "Scene 1's pose 'sitting'"
    assert controlnet_need(BoardOptions(), SCENES) is None
    assert controlnet_need(BoardOptions(), parse_scenes("cu | a face | | none", "lines")) is None
