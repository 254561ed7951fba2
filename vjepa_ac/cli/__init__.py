"""Command-line entry points of every stage, installed as console scripts (pyproject ``[project.scripts]``).

    vjepa-collect      vjepa_ac.cli.collect:main        (scripts/collect_sim.py)
    vjepa-collect-ogbench  vjepa_ac.cli.collect_ogbench:main  (scripts/collect_ogbench.py; extra [ogbench])
    vjepa-pretrain     vjepa_ac.cli.pretrain:main       (scripts/pretrain.py)
    vjepa-probe        vjepa_ac.cli.linear_probe:main   (scripts/linear_probe.py)
    vjepa-train-ac     vjepa_ac.cli.train_ac:main       (scripts/train_ac.py)
    vjepa-evaluate     vjepa_ac.cli.evaluate:main       (scripts/evaluate.py)
    vjepa-demo         vjepa_ac.cli.demo:main           (scripts/demo.py)
    vjepa-deploy       vjepa_ac.cli.deploy:main         (scripts/deploy.py)
    vjepa-franka-server  robot.cli:main                 (scripts/franka_server.py; robot never imports vjepa_ac)

``python -m vjepa_ac.cli.<name>`` (``python -m robot.cli``) runs the same command without installing.

Every ``main(argv)`` goes through the project's one wrapper, ``run_cli`` (``droid_data.cli``): bad input ends
as ONE line on stderr naming the file, field, expected and actual value, with exit code 2 for usage errors
(flags, config values: ``UsageError``, ``ConfigError``) and 1 for data errors (files, checkpoints, episodes);
the traceback only with ``--debug`` or ``VJEPA_AC_DEBUG=1``.
"""
import math

from droid_data.cli import DATA_EXIT, USAGE_EXIT, ArgumentParser, UsageError, one_line, run_cli

__all__ = ["DATA_EXIT", "USAGE_EXIT", "ArgumentParser", "UsageError", "add_energy_flags", "check_arch_config",
           "check_device", "check_planner_flags", "energy_from_flags", "energy_names", "need", "one_line", "run_cli"]


def need(ok: bool, flag: str, expected: str, actual) -> None:
    """A flag check of the plain-argparse commands: ``UsageError('<flag>: expected <expected>, got <actual>')``."""
    if not ok:
        raise UsageError(f"{flag}: expected {expected}, got {actual!r}")


def check_device(device: str, flag: str = "--device") -> None:
    """A torch device string that exists on this machine (cpu, cuda, cuda:N, mps)."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise UsageError(f"{flag}: expected cpu, cuda, cuda:N or mps, got {device!r}") from None
    if parsed.type == "cuda" and not (torch.cuda.is_available() and (parsed.index or 0) < torch.cuda.device_count()):
        raise UsageError(f"{flag}: {device!r} is not available here ({torch.cuda.device_count()} CUDA devices); "
                         f"use cpu")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"{flag}: 'mps' is not available here; use cpu")


def check_planner_flags(args) -> None:
    """The planner flags that evaluate and deploy share; unset (None) ones keep the planner's defaults."""
    for flag in ("horizon", "samples", "iterations", "execute"):
        value = getattr(args, flag, None)
        need(value is None or value >= 1, f"--{flag}", "an integer >= 1", value)
    for flag in ("maxnorm", "max_rotation"):
        value = getattr(args, flag, None)
        need(value is None or (math.isfinite(value) and value > 0), f"--{flag.replace('_', '-')}",
             "a finite number > 0", value)


def check_arch_config(path) -> None:
    """``--arch-config``: a readable YAML/JSON file with ``encoder`` / ``predictor`` sections (a config: exit 2)."""
    if path is None:
        return
    from vjepa_ac.formats import read_arch_config

    try:
        read_arch_config(path)
    except (OSError, ValueError) as e:
        raise UsageError(f"--arch-config {one_line(e)}") from None


def add_energy_flags(parser) -> None:
    """``--energy``, ``--energy-steps``, ``--head``: the planning energy of evaluate and deploy."""
    parser.add_argument("--energy", default="l1", metavar="{l1,l2,FILE}",
                        help="planning energy: the latent distance l1 (official) or l2, or an energy file saved "
                             "with a run (energy.yaml: distance, head term and weights; docs/planning.md)")
    parser.add_argument("--energy-steps", choices=("last", "all"), default=None,
                        help="score the last predicted step (official) or the sum over all steps (default: last, "
                             "or the energy file's `steps`, which this flag overrides)")
    parser.add_argument("--head", help="state-head checkpoint for an energy file with head_weight > 0 (default: the "
                                       "file's `head`, relative to the file)")


def energy_from_flags(args):
    """The energy object of an energy file (``--energy FILE``), or None for a named latent distance (the planner
    then builds it from its config). Bad files are one line naming file and field, before any model loads."""
    from planning.common import ENERGIES

    if args.energy in ENERGIES:
        if args.head is not None:
            raise UsageError(f"--head: expected --energy FILE with head_weight > 0 (the file weighs the head), "
                             f"got --energy {args.energy}")
        return None
    from pathlib import Path

    from vjepa_ac.energy_file import load_energy

    if not Path(args.energy).is_file():
        raise UsageError(f"--energy: expected l1, l2 or an energy file (YAML), got {args.energy!r} (no such file)")
    return load_energy(args.energy, head=args.head, steps=args.energy_steps)


def energy_names(args) -> dict:
    """The planner-config fields of a named latent distance (``--energy l1|l2``); none for an energy file."""
    from planning.common import ENERGIES

    if args.energy not in ENERGIES:
        return {}
    return {"energy": args.energy, "energy_steps": args.energy_steps or "last"}
