"""V-JEPA 2 self-supervised pretraining / cooldown (vjepa_ac.pretrain).

    vjepa-pretrain --config tiny-pretrain                          # CPU, a few minutes
    vjepa-pretrain --config tiny-cooldown                          # anneal from tiny-pretrain
    vjepa-pretrain --config vitl-pretrain-256px-16f --data.path /data/videos
    vjepa-pretrain --config my_run.yaml --optim.lr 3e-4 --data.batch_size 32
    vjepa-pretrain --config official.yaml                          # an official vjepa2 app.main --fname file
    torchrun --nproc_per_node=8 scripts/pretrain.py --config vitg-pretrain-256px-16f

A run folder (--run.out) holds config.yaml, metrics.csv, tb/ (TensorBoard), latest.pt (every epoch) and
e<N>.pt (every run.save_every_epochs). Re-running the same command resumes from latest.pt exactly.
"""
from __future__ import annotations

from vjepa_ac.cli import run_cli


def parse(argv=None):
    from vjepa_ac.config import parse_cli
    from vjepa_ac.pretrain import PRESET_DIR, JEPATrainingConfig, from_official_layout

    return parse_cli(JEPATrainingConfig, argv, PRESET_DIR, default="tiny-pretrain", prog="vjepa-pretrain",
                     description=__doc__, convert=from_official_layout)


def _main(argv: list[str]) -> int:
    from vjepa_ac.pretrain import train

    trainer = train(parse(argv))
    print("final:", {k: round(v, 5) for k, v in trainer.last_metrics.items()})
    return 0


def main(argv=None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":  # python -m vjepa_ac.cli.pretrain
    raise SystemExit(main())
