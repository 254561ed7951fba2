"""Time an autoregressive AC-predictor rollout per horizon: KV-cached vs full recompute (CPU).

The official planner re-runs the predictor on the whole trajectory at every step (cost grows
quadratically with the horizon); ``forward_next`` keeps past keys/values and processes only the newest
frame. Both produce the same predictions; the table also prints their largest difference.

    python benchmarks/rollout_horizon.py                      # small predictor, 8x8 patches, 4 samples
    python benchmarks/rollout_horizon.py --width 1024 --depth 24 --heads 16 --enc-dim 1408   # released size
"""

from __future__ import annotations

import argparse
import time

import torch

from vjepa_ac.models import vit_ac_predictor


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width", type=int, default=192, help="predictor embedding dim (released: 1024)")
    p.add_argument("--depth", type=int, default=6, help="predictor blocks (released: 24)")
    p.add_argument("--heads", type=int, default=6, help="attention heads (released: 16)")
    p.add_argument("--enc-dim", type=int, default=192, help="encoder latent dim (released ViT-g: 1408)")
    p.add_argument("--grid", type=int, default=8, help="patches per side of a frame (released: 16)")
    p.add_argument("--samples", type=int, default=4, help="rollouts in the batch (planner samples)")
    p.add_argument("--max-horizon", type=int, default=8, help="largest horizon timed")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per cell (median reported)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument(
        "--clock",
        choices=["cpu", "wall"],
        default="cpu",
        help="cpu: process CPU time (robust on a shared machine; use with --threads 1); wall: elapsed time",
    )
    return p.parse_args()


@torch.no_grad()
def rollout_full(model, context, actions, states):
    """Official style: every step re-runs the predictor on all frames so far."""
    hw = context.size(1)
    frames, preds = [context], []
    for t in range(actions.size(1)):
        nxt = model(torch.cat(frames, 1), actions[:, : t + 1], states[:, : t + 1])[:, -hw:]
        frames.append(nxt)
        preds.append(nxt)
    return torch.stack(preds, 1)


@torch.no_grad()
def rollout_cached(model, context, actions, states):
    """KV-cached: each step feeds only the newest frame."""
    cache, frame, preds = model.new_cache(), context, []
    for t in range(actions.size(1)):
        frame = model.forward_next(frame, actions[:, t], states[:, t], cache)
        preds.append(frame)
    return torch.stack(preds, 1)


def median_time(clock, repeats, fn, *args):
    times = []
    for _ in range(repeats):
        start = clock()
        out = fn(*args)
        times.append(clock() - start)
    return sorted(times)[len(times) // 2], out


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.manual_seed(0)
    px = 16 * args.grid
    model = vit_ac_predictor(
        img_size=px,
        patch_size=16,
        num_frames=2 * args.max_horizon,
        embed_dim=args.enc_dim,
        predictor_embed_dim=args.width,
        depth=args.depth,
        num_heads=args.heads,
    ).eval()
    params = sum(p.numel() for p in model.parameters()) / 1e6
    context = torch.randn(args.samples, args.grid**2, args.enc_dim)
    actions = torch.randn(args.samples, args.max_horizon, 7) * 0.05
    states = torch.randn(args.samples, args.max_horizon, 7)
    rollout_cached(model, context, actions[:, :1], states[:, :1])  # warm-up
    rollout_full(model, context, actions[:, :1], states[:, :1])

    print(
        f"AC predictor: width {args.width}, depth {args.depth}, heads {args.heads}, {params:.1f}M params; "
        f"{args.grid}x{args.grid} patches + 2 conditioning tokens per frame; {args.samples} samples; "
        f"{args.threads} thread(s); {args.clock} time, median of {args.repeats}",
        flush=True,
    )
    print(
        f"{'horizon':>7} | {'cached ms':>10} | {'full ms':>10} | {'speed-up':>8} | {'cached ms/step':>14} | max |diff|"
    )
    print("-" * 76)
    for horizon in range(1, args.max_horizon + 1):
        a, s = actions[:, :horizon], states[:, :horizon]
        t_cached, out_cached = median_time(clock, args.repeats, rollout_cached, model, context, a, s)
        t_full, out_full = median_time(clock, args.repeats, rollout_full, model, context, a, s)
        diff = (out_cached - out_full).abs().max().item()
        print(
            f"{horizon:>7} | {1e3 * t_cached:>10.1f} | {1e3 * t_full:>10.1f} | {t_full / t_cached:>7.2f}x | "
            f"{1e3 * t_cached / horizon:>14.1f} | {diff:.1e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
