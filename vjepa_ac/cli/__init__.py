"""Command-line entry points of every stage, installed as console scripts (pyproject ``[project.scripts]``).

    vjepa-collect      vjepa_ac.cli.collect:main        (scripts/collect_sim.py)
    vjepa-pretrain     vjepa_ac.cli.pretrain:main       (scripts/pretrain.py)
    vjepa-probe        vjepa_ac.cli.linear_probe:main   (scripts/linear_probe.py)
    vjepa-train-ac     vjepa_ac.cli.train_ac:main       (scripts/train_ac.py)
    vjepa-evaluate     vjepa_ac.cli.evaluate:main       (scripts/evaluate.py)
    vjepa-demo         vjepa_ac.cli.demo:main           (scripts/demo.py)

Every ``main(argv)`` goes through ``run_cli``: bad input ends as ONE line on stderr naming the file, field,
expected and actual value, with exit code 2 for usage errors (flags, config values) and 1 for data errors
(files, checkpoints, episodes); the traceback only with ``--debug`` or ``VJEPA_AC_DEBUG=1``.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from vjepa_ac.config import ConfigError

USAGE_EXIT, DATA_EXIT = 2, 1


class UsageError(ConfigError):
    """A flag or value the command does not accept (exit code 2)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse for the commands with plain flags: a usage error raises ``UsageError`` (one line) instead of
    printing the usage block."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message} (see --help)")


def one_line(exc: BaseException) -> str:
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    if isinstance(exc, KeyError) and text.startswith(("'", '"')) and text.endswith(("'", '"')):
        text = text[1:-1]  # KeyError quotes its message
    return text or type(exc).__name__


def run_cli(main: Callable[[list[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)``; report any failure as one line (see the module docstring). Returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("VJEPA_AC_DEBUG", "") not in ("", "0")
    args = [a for a in args if a != "--debug"]
    try:
        return int(main(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ConfigError as e:  # flags, config files and values: usage
        if debug:
            raise
        print(f"error: {one_line(e)}", file=sys.stderr)
        return USAGE_EXIT
    except Exception as e:  # data errors and anything else: one line, the traceback on request
        if debug:
            raise
        known = isinstance(e, (OSError, ValueError, KeyError, FloatingPointError))
        hint = "" if known else f" ({type(e).__name__}; run with --debug for the traceback)"
        print(f"error: {one_line(e)}{hint}", file=sys.stderr)
        return DATA_EXIT
