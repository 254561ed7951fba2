"""Held-out evaluation of an AC predictor: latent L1 error per horizon step, next to copy-last-frame.

For a clip with latents h_0..h_H (ground truth), teacher-forcing predictions ẑ^tf_k (frame k predicted from
ground-truth frames 0..k-1) and rollout predictions ẑ^ar_k (frame k predicted from frame 0 and the model's
own predictions), the error at horizon k = 1..H is the mean absolute difference over tokens and channels:

    teacher_forcing[k] = |ẑ^tf_k - h_k|     copy_previous[k] = |h_{k-1} - h_k|   (its copy-last baseline)
    rollout[k]         = |ẑ^ar_k - h_k|     copy_first[k]    = |h_0 - h_k|       (its copy-last baseline)

Each baseline copies the last frame the predictor was given. A useful model is below its baseline.
Errors are accumulated as per-clip sums (``HorizonErrors``), so batches and DDP ranks add up exactly.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from vjepa_ac.distributed import is_distributed

ROWS = ("teacher_forcing", "copy_previous", "rollout", "copy_first")


@dataclass
class HorizonErrors:
    """Sums of per-clip mean L1 errors, ``sums[row, k-1]`` for the rows in ``ROWS``, and clip counts."""

    sums: torch.Tensor  # float64 [4, H]
    counts: torch.Tensor  # float64 [4, H]

    @classmethod
    def zeros(cls, horizon: int) -> HorizonErrors:
        return cls(torch.zeros(len(ROWS), horizon, dtype=torch.float64), torch.zeros(len(ROWS), horizon, dtype=torch.float64))

    @property
    def horizon(self) -> int:
        return self.sums.shape[1]

    def __add__(self, other: HorizonErrors) -> HorizonErrors:
        if other.horizon != self.horizon:
            raise ValueError(f"HorizonErrors: cannot add horizon {other.horizon} to horizon {self.horizon}")
        return HorizonErrors(self.sums + other.sums, self.counts + other.counts)

    def all_reduce(self) -> HorizonErrors:
        """Sum over DDP ranks (identity without torch.distributed)."""
        if not is_distributed():
            return self
        packed = torch.stack([self.sums, self.counts])
        torch.distributed.all_reduce(packed)
        return HorizonErrors(packed[0], packed[1])

    def means(self) -> dict[str, list[float]]:
        m = self.sums / self.counts.clamp_min(1)
        m[self.counts == 0] = float("nan")
        return {row: m[i].tolist() for i, row in enumerate(ROWS)}

    def summary(self) -> dict[str, float]:
        """Flat ``eval/<row>_h<k>`` scalars for the metrics log."""
        return {f"eval/{row}_h{k + 1}": v for row, vals in self.means().items() for k, v in enumerate(vals)}

    def table(self) -> str:
        """A fixed-width text table, one line per horizon step (ratios < 1 beat copy-last-frame)."""
        m = self.means()
        head = (f"{'h':>3} {'teacher_forcing':>16} {'copy_previous':>14} {'tf/copy':>8} "
                f"{'rollout':>10} {'copy_first':>11} {'roll/copy':>9}")
        lines = [head]
        for k in range(self.horizon):
            tf, cp, ar, cf = (m[r][k] for r in ROWS)
            lines.append(f"{k + 1:>3} {tf:>16.5f} {cp:>14.5f} {_ratio(tf, cp):>8} "
                         f"{ar:>10.5f} {cf:>11.5f} {_ratio(ar, cf):>9}")
        return "\n".join(lines)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b > 0 else "n/a"


def horizon_errors(h: torch.Tensor, z_tf: torch.Tensor, z_ar: torch.Tensor) -> HorizonErrors:
    """Ground truth ``h`` ``[B, H+1, N, D]``, teacher forcing ``z_tf`` ``[B, H, N, D]`` (frames 1..H) and
    rollout ``z_ar`` ``[B, H_ar, N, D]`` (frames 1..H_ar, H_ar <= H) -> per-horizon error sums."""
    b, t = h.shape[:2]
    horizon = t - 1
    if z_tf.shape[:2] != (b, horizon) or z_ar.shape[0] != b or z_ar.shape[1] > horizon:
        raise ValueError(f"horizon_errors: expected z_tf [B={b}, H={horizon}, ...] and z_ar [B, <=H, ...], "
                         f"got {tuple(z_tf.shape)} and {tuple(z_ar.shape)}")
    h, z_tf, z_ar = h.float(), z_tf.float(), z_ar.float()

    def per_clip(a, b_):  # [B, K, N, D] -> [K] summed over clips of each clip's mean
        return (a - b_).abs().flatten(2).mean(-1).sum(0).double()

    sums = torch.zeros(len(ROWS), horizon, dtype=torch.float64, device=h.device)
    counts = torch.zeros_like(sums)
    steps_ar = z_ar.shape[1]
    sums[0] = per_clip(z_tf, h[:, 1:])
    sums[1] = per_clip(h[:, :-1], h[:, 1:])
    sums[2, :steps_ar] = per_clip(z_ar, h[:, 1:steps_ar + 1])
    sums[3] = per_clip(h[:, :1].expand_as(h[:, 1:]), h[:, 1:])
    counts[:] = b
    counts[2, steps_ar:] = 0
    return HorizonErrors(sums.cpu(), counts.cpu())


def plot(errors: HorizonErrors, path: str | os.PathLike, title: str = "held-out latent L1") -> None:
    """Error vs horizon for teacher forcing and rollout, with their copy-last-frame baselines dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = errors.means()
    ks = list(range(1, errors.horizon + 1))
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(ks, m["rollout"], "o-", color="C0", label="rollout")
    ax.plot(ks, m["copy_first"], "o--", color="C0", alpha=0.6, label="copy frame 0 (rollout baseline)")
    ax.plot(ks, m["teacher_forcing"], "s-", color="C1", label="teacher forcing")
    ax.plot(ks, m["copy_previous"], "s--", color="C1", alpha=0.6, label="copy previous frame (TF baseline)")
    ax.set_xlabel("horizon step")
    ax.set_ylabel("mean |pred - target|")
    ax.set_title(title)
    ax.set_xticks(ks)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = Path(str(path) + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def write_report(errors: HorizonErrors, out_dir: str | os.PathLike, step: int) -> Path:
    """Write ``horizon_errors.txt`` (table), ``horizon_errors.json``, ``horizon_errors.png`` and append
    the numbers to ``horizon_errors.csv`` (one row per horizon per evaluation step). Returns ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "horizon_errors.txt").write_text(f"step {step}\n{errors.table()}\n")
    (out_dir / "horizon_errors.json").write_text(json.dumps({"step": step, **errors.means()}, indent=1))
    plot(errors, out_dir / "horizon_errors.png", title=f"held-out latent L1, step {step}")
    csv_path = out_dir / "horizon_errors.csv"
    new = not csv_path.exists()
    with open(csv_path, "a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(["step", "horizon", *ROWS])
        m = errors.means()
        for k in range(errors.horizon):
            w.writerow([step, k + 1, *(m[r][k] for r in ROWS)])
    return out_dir
