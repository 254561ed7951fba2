"""End-to-end CPU demo: collect -> pretrain -> cooldown -> AC -> state head -> landscape -> plan (vjepa_ac.demo).

    vjepa-demo                                     # the demo (preset demo-reach), results in runs/demo
    vjepa-demo --config demo-toy --out /tmp/toy    # the 1-2 minute toy pipeline (also run by the tests)
    vjepa-demo --eval_episodes 50 --head_weight 20

Writes OUT/results.md and OUT/results.json, OUT/eval/*/ (reports, videos, energy-landscape plots),
OUT/landscape.json, OUT/landscape.png and OUT/energy.yaml (the planning energy; `vjepa-evaluate --energy`). Each
stage writes OUT/manifests/<stage>.json; a rerun reuses every stage finished with the same settings, and the
printed `scripts/evaluate.py` commands reproduce the closed-loop rows from the CLI alone.
"""
from __future__ import annotations

from vjepa_ac.cli import run_cli


def _main(argv: list[str]) -> int:
    from vjepa_ac import demo
    from vjepa_ac.config import parse_cli
    from vjepa_ac.pretrain import PRESET_DIR

    cfg = parse_cli(demo.DemoConfig, argv, PRESET_DIR, default="demo-reach", prog="vjepa-demo", description=__doc__)
    return demo.run(cfg)


def main(argv=None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":  # python -m vjepa_ac.cli.demo
    raise SystemExit(main())
