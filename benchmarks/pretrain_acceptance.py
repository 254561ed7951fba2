#!/usr/bin/env python
"""Tiny CPU pretraining acceptance run: simulator clips -> tiny-pretrain -> linear probe vs random init.

    python benchmarks/pretrain_acceptance.py                 # collect (if needed), pretrain, probe
    python benchmarks/pretrain_acceptance.py --skip-train    # probe an existing run

Prints the loss / feature-statistics trajectory of the run and the probe table (R² and RMSE of the
end-effector position on held-out episodes, pretrained vs random-init encoder vs pixels).
"""
import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

from vjepa_ac.metrics_log import read_metrics

ROOT = Path(__file__).resolve().parents[1]


def run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data/sim_reach", help="episode folder (collected if missing)")
    p.add_argument("--episodes", type=int, default=200, help="episodes to collect if --data is missing")
    p.add_argument("--run", default="runs/tiny-pretrain", help="pretraining run folder")
    p.add_argument("--config", default="tiny-pretrain", help="pretraining preset or YAML")
    p.add_argument("--skip-train", action="store_true", help="only probe the existing run")
    args = p.parse_args()

    py = sys.executable
    if not (ROOT / args.data).is_dir():
        run([py, "scripts/collect_sim.py", "--task", "FrankaReach-v0", "--episodes", str(args.episodes),
             "--out", args.data])
    if not args.skip_train:
        run([py, "scripts/pretrain.py", "--config", args.config, "--run.out", args.run, "--data.path", args.data])

    m = read_metrics(ROOT / args.run / "metrics.csv")
    print("\n| step | loss | target std | target rank | context std | context rank |")
    print("|---|---|---|---|---|---|")
    rows = [i for i, v in enumerate(m["target_std"]) if np.isfinite(v)]
    for i in rows[:: max(1, len(rows) // 6)] + rows[-1:]:
        print(f"| {int(m['step'][i])} | {m['loss'][i]:.4f} | {m['target_std'][i]:.3f} | {m['target_rank'][i]:.1f} | "
              f"{m['context_std'][i]:.3f} | {m['context_rank'][i]:.1f} |")
    loss = np.asarray(m["loss"])
    k = max(1, len(loss) // 10)
    print(f"\nloss: first 10% of logged steps {loss[:k].mean():.4f} -> last 10% {loss[-k:].mean():.4f}; "
          f"wall time {m['time_s'][-1]:.0f} s\n")
    run([py, "scripts/linear_probe.py", "--checkpoint", f"{args.run}/latest.pt", "--data", args.data,
         "--layers", "both", "--pool", "both", "--frame-stride", "2"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
