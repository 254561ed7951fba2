"""Command line: ``python -m droid_data {validate,convert} ...`` (``--help`` on each for every flag).

Errors are one line on stderr; exit code 2 for usage errors (bad flags, nothing to read, output exists), 1 for bad
data. ``--debug`` (or the environment variable VJEPA_AC_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import sys

from droid_data.cache import convert
from droid_data.cli import ArgumentParser, UsageError, one_line, run_cli
from droid_data.episode import CORRUPTION_KINDS, EpisodeError
from droid_data.validate import format_report, validate_episodes


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0:  # also refuses NaN
            raise argparse.ArgumentTypeError(f"expected a value > 0, got {text!r}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m droid_data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    common = ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (also: VJEPA_AC_DEBUG=1)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    validate = commands.add_parser(
        "validate",
        parents=[common],
        help="check every episode; exit code 1 if any is bad, 2 if none was found",
        description="Report every bad episode with its file and reason. Kinds: "
        + "; ".join(f"{k} ({v})" for k, v in CORRUPTION_KINDS.items()),
    )
    validate.add_argument(
        "root",
        help="episode root folder (searched recursively), index file (CSV/text) or LeRobot dataset folder",
    )
    validate.add_argument(
        "--cameras",
        nargs="+",
        default=None,
        help="cameras to check (roles like left/ext1/wrist or serials; default: every camera the metadata names)",
    )
    validate.add_argument(
        "--decode-all", action="store_true", help="decode every frame (slow; default: first and last)"
    )
    validate.add_argument("--quiet", action="store_true", help="no progress bar")

    conv = commands.add_parser(
        "convert",
        parents=[common],
        help="write a zarr v3 clip cache for fast training",
        description="Convert DROID raw episodes (or a LeRobot v2/v3 folder) into a zarr v3 clip cache.",
    )
    conv.add_argument("root", help="episode root folder, index file (CSV/text) or LeRobot dataset folder")
    conv.add_argument("out", help="output store folder (written to OUT.partial, renamed when done)")
    conv.add_argument(
        "--size",
        type=_positive(int),
        nargs="+",
        default=[256],
        help="output resolution: S or H W (default 256)",
    )
    conv.add_argument(
        "--crop-aspect",
        type=_positive(float),
        default=1.0,
        help="width/height of the center crop before resizing (1.0 square; 1.35 = the official training crop)",
    )
    conv.add_argument(
        "--cameras",
        nargs="+",
        default=["left"],
        help="cameras to store (default: left, the official view; e.g. left right wrist, ext1, a serial, or LeRobot keys)",
    )
    conv.add_argument(
        "--skip-bad",
        action="store_true",
        help="leave out bad episodes (logged and recorded) instead of stopping",
    )
    conv.add_argument("--workers", type=int, default=0, help="decoding processes (default 0 = this process)")
    conv.add_argument(
        "--chunk-frames", type=_positive(int), default=8, help="frames per zarr chunk (default 8)"
    )
    conv.add_argument(
        "--shard-frames", type=_positive(int), default=256, help="frames per zarr shard file (default 256)"
    )
    conv.add_argument(
        "--state-keys",
        nargs="+",
        default=None,
        help="LeRobot only: features concatenated into the 7-D state (default: DROID port keys or observation.state)",
    )
    conv.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    conv.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv=None) -> int:
    """Bad data the checks below do not foresee is still one line (droid_data.cli.run_cli), never a traceback."""
    return run_cli(_main, argv)


def _main(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)  # usage errors: UsageError, exit 2
    if args.command == "convert" and len(args.size) > 2:
        raise UsageError(f"--size: expected S or H W, got {len(args.size)} values")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return _validate(args) if args.command == "validate" else _convert(args)


def _validate(args) -> int:
    try:
        count, problems = validate_episodes(args.root, args.cameras, args.decode_all, progress=not args.quiet)
    except (FileNotFoundError, ValueError) as error:  # nothing to validate: a usage error
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2
    if count == 0:
        print(f"error: no episodes (folders holding trajectory.h5) found under {args.root}", file=sys.stderr)
        return 2
    print(format_report(count, problems))
    return 1 if problems else 0


def _convert(args) -> int:
    size = args.size[0] if len(args.size) == 1 else tuple(args.size)
    try:
        report = convert(
            args.root,
            args.out,
            size=size,
            crop_aspect=args.crop_aspect,
            cameras=args.cameras,
            skip_bad=args.skip_bad,
            workers=args.workers,
            chunk_frames=args.chunk_frames,
            shard_frames=args.shard_frames,
            overwrite=args.overwrite,
            state_keys=args.state_keys,
            progress=not args.quiet,
        )
    except (FileExistsError, FileNotFoundError) as error:  # output exists / nothing to read: usage errors
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2
    except (EpisodeError, ValueError) as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 1
    print(
        f"wrote {report.out}: {report.episodes} episodes, {report.frames} frames, {len(report.skipped)} problem(s) skipped"
    )
    for problem in report.skipped:
        print(f"SKIPPED {problem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
