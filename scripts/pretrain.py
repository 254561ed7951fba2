#!/usr/bin/env python
"""V-JEPA 2 self-supervised pretraining / cooldown.

Examples:
  python scripts/pretrain.py --config tiny-pretrain                       # CPU, a few minutes
  python scripts/pretrain.py --config tiny-cooldown                       # anneal from tiny-pretrain
  python scripts/pretrain.py --config vitl-pretrain-256px-16f --set data.path=/data/videos
  torchrun --nproc_per_node=8 scripts/pretrain.py --config vitg-pretrain-256px-16f
  python scripts/pretrain.py --config my_run.yaml --set lr=3e-4 --set batch_size=32

A run folder holds config.yaml, metrics.csv, tb/ (TensorBoard), latest.pt (every epoch) and e<N>.pt
(every save_every_epochs). Re-running the same command resumes from latest.pt exactly.
"""
import argparse
import sys

from vjepa_ac.config import ConfigError, list_presets, to_dict
from vjepa_ac.pretrain import PRESET_DIR, load_pretrain_config, train


def pretraining_presets() -> list[str]:
    """Presets that are pretraining configs (the folder also holds AC-training and demo presets)."""
    names = []
    for name in list_presets(PRESET_DIR):
        try:
            load_pretrain_config(name)
        except ConfigError:
            continue  # an AC-training or end-to-end demo preset: not for this script
        names.append(name)
    return names


def main(argv=None) -> int:
    presets = pretraining_presets()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="tiny-pretrain",
                        help=f"preset name or YAML path (default: tiny-pretrain). Presets: {', '.join(presets)}")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field (repeatable; dotted for nested fields, values parsed as "
                             "YAML), e.g. --set lr=3e-4 --set data.path=/data/droid --set model.depth=6")
    parser.add_argument("--output-dir", help="run folder (same as --set output_dir=...)")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda:LOCAL_RANK if available, else cpu)")
    parser.add_argument("--threads", type=int,
                        help="torch CPU threads (same as --set threads=N); 1 is fastest for tiny models on a busy "
                             "machine")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    args = parser.parse_args(argv)

    overrides = list(args.overrides)
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    if args.device:
        overrides.append(f"device={args.device}")
    if args.threads:
        overrides.append(f"threads={args.threads}")
    cfg = load_pretrain_config(args.config, overrides)
    if args.print_config:
        import yaml

        print(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        return 0
    trainer = train(cfg)
    print("final:", {k: round(v, 5) for k, v in trainer.last_metrics.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
