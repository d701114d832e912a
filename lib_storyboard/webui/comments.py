"""One sentence about a generation: in the console and in the generation's comments (shown under the image in the UI;
the host's API answer has no comments, so the console line is what API users see)."""


def problem(p, message: str) -> None:
    print(f"[storyboard] {message}", flush=True)
    if hasattr(p, "comment"):
        p.comment(message)
