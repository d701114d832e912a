"""Command-line flags of sd-webui-storyboard; the host calls `preload(parser)` before it parses its arguments."""


def preload(parser):
    parser.add_argument("--storyboard-no-download", action="store_true",
                        help="sd-webui-storyboard: never download detector models; use only local files.")
    parser.add_argument("--storyboard-dir", type=str, default=None,
                        help="sd-webui-storyboard: folder for training states and detector models "
                             "(default: <models>/storyboard).")
