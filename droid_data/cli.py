"""The one error wrapper of every command line in the project: ``vjepa-*``, ``python -m droid_data`` and the
robot server.

Bad input ends as ONE line on stderr, ``error: <file or flag>: <field>: expected <...>, got <...>``, and an
exit code: 2 for usage errors (flags, config files and values: ``UsageError``), 1 for data errors (files,
checkpoints, episodes, a robot that fails). The traceback only with ``--debug`` or ``VJEPA_AC_DEBUG=1``.

It lives here, with no dependency beyond the standard library, because ``droid_data`` is the package every
other one may import: ``vjepa_ac.cli`` and ``robot.cli`` both use it without ``robot`` importing ``vjepa_ac``.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

USAGE_EXIT, DATA_EXIT = 2, 1
DEBUG_ENV = "VJEPA_AC_DEBUG"


class UsageError(ValueError):
    """A flag, option or config value the command does not accept (exit code 2)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors raise ``UsageError`` (one line) instead of printing the usage block."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message} (see --help)")


def one_line(text_or_error) -> str:
    """A message as one line: whitespace runs (library messages often span lines) become one space.

    For an exception, its message (a ``KeyError``'s quotes removed), or its class name when it has none.
    """
    text = " ".join(str(text_or_error).split())
    if isinstance(text_or_error, KeyError) and len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    if isinstance(text_or_error, BaseException) and not text:
        return type(text_or_error).__name__
    return text


def read_yaml_file(path, expected: str = "a YAML file"):
    """``yaml.safe_load`` of the file at ``path``. A missing file is a ``FileNotFoundError``, undecodable bytes or
    a syntax error a ``ValueError``: one line naming the file (and the line and column of a syntax error)."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file (expected {expected})") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: expected {expected}, got undecodable bytes ({e.reason} at byte {e.start})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        raise ValueError(f"{path}:{where} YAML syntax error: {getattr(e, 'problem', None) or e}") from None


def debug_requested(argv: Sequence[str] = ()) -> bool:
    return "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")


# Errors whose messages in this project name the file or field; anything else also gets its class name.
_DESCRIBED = (OSError, ValueError, KeyError, FloatingPointError)


def run_cli(main: Callable[[list[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)`` (``--debug`` removed from argv); report any failure as one line. Returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(args)
    args = [a for a in args if a != "--debug"]
    try:
        return int(main(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except UsageError as e:
        if debug:
            raise
        print(f"error: {one_line(e)}", file=sys.stderr)
        return USAGE_EXIT
    except Exception as e:  # data errors and anything unforeseen: one line, the traceback on request
        if debug:
            raise
        if isinstance(e, _DESCRIBED):
            print(f"error: {one_line(e)}", file=sys.stderr)
        else:
            print(f"error: {type(e).__name__}: {one_line(e)} (rerun with --debug for the traceback)", file=sys.stderr)
        return DATA_EXIT
