#!/usr/bin/env python
"""Training throughput: AC training from the feature store vs re-encoding every step, and the pretraining step
vs an official-style step; plus the peak memory of AC training on demo-sized data. One run, one table.

    OMP_NUM_THREADS=1 python benchmarks/training_throughput.py            # ~5 minutes on one busy CPU core
    python benchmarks/training_throughput.py --skip-rss --ac-steps 20      # quicker

**AC training, steps/s including data.** Both rows run the package's own loop (``vjepa_ac.ac_train.train``) on
the same synthetic DROID-format episodes with the ``ac-tiny`` preset (ViT-tiny encoder at 64 px, 4-block
predictor, batch 16, 5-frame clips), the same clips in the same order:
- *feature store* (the package's path): frames are encoded once into ``features.zarr``; a step reads latents;
- *re-encode every step* (what the official ``app/vjepa_droid`` trainer does): a step decodes the clip's
  frames from the episode's MP4 and runs the frozen encoder on them before the predictor.
The step is otherwise the same, so the losses must agree to float rounding (stored as float32): the first
``--loss-steps`` losses of both runs are compared. The store is built once (its time is printed; a full run
amortises it over every step). Steps/s come from the ``time_s`` column of each run's ``metrics.csv`` over the
steps after ``--warmup``.

**Pretraining, steps/s of the step alone.** The package's ``JEPATrainer.train_step`` + EMA update against an
official-style step written here from the facts of facebookresearch/vjepa2 ``app/vjepa/train.py`` (target
encoder under no_grad + layer norm, context encoder and predictor per mask pair, mean L1 over pairs, backward,
AdamW step, zero_grad, EMA with ``_foreach_mul_`` / ``_foreach_add_``). Same weights, same AdamW groups and
schedules, same pre-made batches and masks, steps interleaved (package, official, package, ...) so machine
load hits both alike; the VICReg terms of ``tiny-pretrain`` are off so the loss is the official one. The
package's step also runs its divergence guard and, every ``run.stats_every`` steps, the feature statistics.

**Peak RSS** of ``python scripts/train_ac.py`` (store build + training) in a fresh process on
demo-sized data: ``--rss-episodes`` episodes of ``--rss-length`` frames at 64 px, the demo's encoder size
(128 wide x 4 blocks, patch 16) and the ``ac-demo`` predictor and batch; read with ``os.wait4``.
"""
from __future__ import annotations

import argparse
import copy
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from droid_data.sources import list_episodes, load_episode
from droid_data.synthetic import write_synthetic_episode
from droid_data.video import center_crop_resize
from vjepa_ac import feature_cache as fc
from vjepa_ac import pretrain
from vjepa_ac.ac_train import encoder_spec, load_ac_config, train
from vjepa_ac.checkpoint import load_checkpoint
from vjepa_ac.masks import mask_generator
from vjepa_ac.metrics_log import read_metrics
from vjepa_ac.optim import build_adamw
from vjepa_ac.runtime import build_encoder
from vjepa_ac.schedules import LRScheduler, WDScheduler
from vjepa_ac.video_data import build_dataset, build_loader

ROOT = Path(__file__).resolve().parents[1]
CAMERA = "11111111"  # the synthetic episodes' one camera; role ext1, the ac-tiny camera


# ----------------------------------------------------------------------------------------------------------
# AC training: feature store vs re-encode every step


class ReencodeClips(torch.utils.data.Dataset):
    """The clips of a ``FeatureClipDataset`` (same windows, same order) as uint8 frames decoded from the
    episodes' videos on every access, so the training loop runs the frozen encoder each step (official path)."""

    def __init__(self, store_clips: fc.FeatureClipDataset, episodes_root: Path, img_size: int, camera: str):
        self.clips, self.img_size, self.camera = store_clips, img_size, camera
        self.refs = list_episodes(episodes_root)  # the store's episode order (build_feature_cache lists them so)

    def __len__(self):
        return len(self.clips)

    def __getitem__(self, index):
        e, start = self.clips.windows[index]
        idx = start + self.clips.steps[e] * np.arange(self.clips.frames_per_clip)
        frames = load_episode(self.refs[e]).load_frames(self.camera, idx)  # decodes the MP4, as decord does
        item = self.clips[index]  # states and actions exactly as the store path sees them
        return {"frames": torch.from_numpy(center_crop_resize(frames, self.img_size, 1.0)),
                "states": item["states"], "actions": item["actions"]}


def write_episodes(root: Path, count: int, length: int, size: tuple[int, int]) -> None:
    for i in range(count):
        write_synthetic_episode(root / f"ep{i:04d}", length=length, cameras=(CAMERA,), size=size, seed=i)


def ac_run(cfg, train_set, encoder, out: Path) -> dict:
    cfg = replace(cfg, run=replace(cfg.run, out=str(out)))
    torch.manual_seed(cfg.run.seed)
    train(cfg, train_set, None, encoder=copy.deepcopy(encoder), data_info={"video_fps": 15.0, "frame_step": 4},
          progress=False)
    return read_metrics(out / "metrics.csv")


def steps_per_second(metrics: dict, warmup: int) -> float:
    t = metrics["time_s"]
    return (len(t) - warmup) / (t[-1] - t[warmup - 1])


def ac_throughput(args, work: Path) -> dict:
    episodes = work / "episodes"
    write_episodes(episodes, args.episodes, args.length, tuple(args.video_size))
    total = args.warmup + args.ac_steps
    cfg = load_ac_config("ac-tiny", {
        "data": {"camera": "ext1", "cache_dtype": "float32"},
        "optim": {"total_steps": max(2000, 10 * total)},
        "run": {"log_every": 1, "eval_every": 10**9, "checkpoint_every": 10**9, "max_steps": total}})
    torch.manual_seed(0)
    encoder = build_encoder(encoder_spec(cfg)).eval()

    t0 = time.perf_counter()
    store = fc.build_feature_cache(episodes, work / "features.zarr", encoder, cfg, encoder_spec(cfg), progress=False)
    build_s = time.perf_counter() - t0
    store_clips = fc.FeatureClipDataset(store, cfg.data.frames_per_clip, cfg.data.fps)
    reencode = ReencodeClips(store_clips, episodes, cfg.model.img_size, "ext1")

    stored = ac_run(cfg, store_clips, encoder, work / "ac_store")
    again = ac_run(cfg, reencode, encoder, work / "ac_reencode")
    k = min(args.loss_steps, total)
    diff = float(np.max(np.abs(np.asarray(stored["loss"][:k]) - np.asarray(again["loss"][:k]))))
    return {"store_sps": steps_per_second(stored, args.warmup), "reencode_sps": steps_per_second(again, args.warmup),
            "build_s": build_s, "frames": int(sum(store_clips.lengths)), "loss_diff": diff, "loss_steps": k,
            "first_losses": (stored["loss"][:3], again["loss"][:3])}


def block_flops(dim: int, mlp_ratio: float, tokens: int, context: int) -> float:
    """Forward FLOPs of one transformer block on ``tokens`` new tokens attending to ``context`` tokens
    (2 per multiply-add: qkv + projection + MLP matmuls, then q.k and attention.v)."""
    return 2 * tokens * dim * dim * (4 + 2 * mlp_ratio) + 4 * tokens * context * dim


def ac_clip_flops(enc: tuple[int, int, float], pred: tuple[int, int], grid: int, frames: int, auto_steps: int,
                  recompute: bool = False) -> tuple[float, float]:
    """(frozen-encoder forward, predictor forward + backward) FLOPs of one AC training clip.

    ``enc`` = (width, depth, mlp ratio), ``pred`` = (width, depth); each frame is encoded alone as one tubelet
    (``grid`` tokens); the predictor sees ``grid`` + 2 tokens per frame, teacher forcing on frames 0..T-2 (one
    block-causal pass, full attention cost as SDPA with a mask computes it) plus ``auto_steps`` KV-cached rollout
    steps. Backward = 2x forward (+1x when activations are recomputed)."""
    (ew, ed, er), (pw, pd) = enc, pred
    encoder = frames * ed * block_flops(ew, er, grid, grid)
    per_frame = grid + 2
    tf = pd * block_flops(pw, 4.0, (frames - 1) * per_frame, (frames - 1) * per_frame)
    roll = sum(pd * block_flops(pw, 4.0, per_frame, (k + 1) * per_frame) for k in range(auto_steps))
    return encoder, (tf + roll) * (4 if recompute else 3)


FLOP_ROWS = {  # name: (encoder, predictor, tokens per frame, frames, rollout steps, activation recompute)
    "ac-tiny (ViT-tiny 64 px, predictor 128 x 4)": ((192, 12, 4.0), (128, 4), 16, 5, 2, False),
    "ac-droid-256px-8f (ViT-g 256 px, predictor 1024 x 24)": ((1408, 40, 48 / 11), (1024, 24), 256, 8, 2, True),
}


# ----------------------------------------------------------------------------------------------------------
# pretraining: the package's step vs an official-style step


class OfficialStyleStep:
    """One V-JEPA 2 pretraining step in the order of the official ``app/vjepa/train.py`` (written from its facts,
    on this package's networks, which equal the official ones)."""

    def __init__(self, encoder, predictor, cfg):
        self.encoder, self.predictor = encoder, predictor
        self.target = copy.deepcopy(encoder).requires_grad_(False)
        o = cfg.optim
        self.optimizer = build_adamw({"encoder": encoder, "predictor": predictor}, o.lr, o.weight_decay,
                                     lr_scales={"encoder": o.encoder_lr_scale})
        self.lr, self.wd = LRScheduler(self.optimizer, o), WDScheduler(self.optimizer, o)
        self.ema = pretrain.EMAManager(encoder, (o.ema_start, o.ema_end, o.ema_schedule), o.total_steps).schedule
        self.loss_exp = cfg.loss.loss_exp

    def __call__(self, step: int, clips, masks_enc, masks_pred) -> float:
        self.lr.step(step + 1)
        self.wd.step(step + 1)
        with torch.no_grad():  # forward_target
            h = self.target(clips)
            h = F.layer_norm(h, (h.size(-1),))
        # forward_context: one context per mask, the predictor on each (masks_enc[i] with masks_pred[i])
        z = [self.predictor(self.encoder(clips, masks=me), me, mp, mask_index=i)
             for i, (me, mp) in enumerate(zip(masks_enc, masks_pred))]
        loss = 0.0  # loss_fn: mean over pairs of mean(|z - h[masks_pred]|^p) / p
        for zi, mp in zip(z, masks_pred):
            hi = pretrain.gather_tokens(h, mp)
            loss = loss + torch.mean(torch.abs(zi - hi) ** self.loss_exp) / self.loss_exp
        loss = loss / len(z)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        m = self.ema.value(step)  # momentum update of the target encoder
        with torch.no_grad():
            params_k, params_q = list(self.target.parameters()), [p.detach() for p in self.encoder.parameters()]
            torch._foreach_mul_(params_k, m)
            torch._foreach_add_(params_k, params_q, alpha=1 - m)
        return float(loss.detach())


def pretrain_throughput(args) -> dict:
    cfg = pretrain.load_pretrain_config("tiny-pretrain", {
        "data": {"source": "synthetic", "path": None, "num_workers": 0},
        "loss": {"vicreg_var_weight": 0.0, "vicreg_cov_weight": 0.0}})
    torch.manual_seed(cfg.run.seed)
    encoder = pretrain.build_encoder(cfg)
    predictor = pretrain.build_predictor(cfg, encoder.embed_dim)
    official = OfficialStyleStep(copy.deepcopy(encoder), copy.deepcopy(predictor), cfg)
    ours = pretrain.JEPATrainer(encoder, predictor, cfg, "cpu")

    total = args.warmup + args.pretrain_steps
    loader = iter(build_loader(build_dataset(cfg.data), cfg.data.batch_size, cfg.run.seed, 0, 1, 0, 0))
    sampler = pretrain.build_mask_sampler(cfg)
    batches = [(next(loader), *sampler(cfg.data.batch_size, mask_generator(s, cfg.run.seed, 0))) for s in range(total)]
    times = {"package": [], "official": []}
    losses = {"package": [], "official": []}
    for step, (clips, masks_enc, masks_pred) in enumerate(batches):
        t0 = time.perf_counter()
        metrics = ours.train_step(clips, masks_enc, masks_pred)
        ours.update_ema(step)
        t1 = time.perf_counter()
        loss = official(step, clips, masks_enc, masks_pred)
        t2 = time.perf_counter()
        losses["package"].append(metrics["loss"])
        losses["official"].append(loss)
        if step >= args.warmup:
            times["package"].append(t1 - t0)
            times["official"].append(t2 - t1)
    k = min(args.loss_steps, total)
    diff = float(np.max(np.abs(np.subtract(losses["package"][:k], losses["official"][:k]))))
    return {"package_sps": 1 / statistics.median(times["package"]),
            "official_sps": 1 / statistics.median(times["official"]), "loss_diff": diff, "loss_steps": k}


# ----------------------------------------------------------------------------------------------------------
# peak memory of AC training on demo-sized data


def ac_peak_rss(args, work: Path) -> tuple[float, float, list[str]]:
    episodes = work / "demo_episodes"
    write_episodes(episodes, args.rss_episodes, args.rss_length, (64, 64))
    cmd = [sys.executable, "scripts/train_ac.py", "--config", "ac-demo", "--data.path", str(episodes),
           "--data.camera", "ext1", "--model.encoder_name", "VisionTransformer", "--model.encoder_kwargs",
           "{embed_dim: 128, depth: 4, num_heads: 4, use_rope: true}", "--model.encoder_checkpoint_key", "encoder",
           "--run.out", str(work / "ac_demo"), "--run.max_steps", str(args.rss_steps)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{stderr[-2000:]}")
    done = load_checkpoint(work / "ac_demo" / "latest.pt", required=("step",))["step"]
    if done != args.rss_steps:  # the process must really have built the store and trained
        raise RuntimeError(f"{' '.join(cmd)}: latest.pt is at step {done}, expected {args.rss_steps}")
    return usage.ru_maxrss / 1024, time.perf_counter() - t0, cmd  # ru_maxrss is in KiB on Linux


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=12, help="synthetic episodes for the AC throughput runs")
    p.add_argument("--length", type=int, default=60, help="frames per episode (15 fps video)")
    p.add_argument("--video-size", type=int, nargs=2, default=(64, 64), metavar=("H", "W"),
                   help="video frame size of those episodes (the demo records 64 x 64; DROID raw is 720 x 1280)")
    p.add_argument("--warmup", type=int, default=3, help="steps not timed at the start of each run")
    p.add_argument("--ac-steps", type=int, default=30, help="timed AC steps per path")
    p.add_argument("--pretrain-steps", type=int, default=20, help="timed pretraining steps per step kind")
    p.add_argument("--loss-steps", type=int, default=10, help="first losses compared between the two paths")
    p.add_argument("--skip-rss", action="store_true", help="skip the demo-sized peak-RSS run")
    p.add_argument("--rss-episodes", type=int, default=300, help="episodes of the RSS run (the demo collects 300)")
    p.add_argument("--rss-length", type=int, default=112, help="frames per episode of the RSS run (30 steps at 4 Hz)")
    p.add_argument("--rss-steps", type=int, default=50, help="AC steps of the RSS run")
    p.add_argument("--only-rss", action="store_true", help="only the demo-sized peak-RSS run")
    args = p.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.only_rss:
            print_throughput(args, ac_throughput(args, work), pretrain_throughput(args))
        if args.only_rss or not args.skip_rss:
            mib, seconds, cmd = ac_peak_rss(args, work)
            print(f"\npeak RSS of AC training on demo-sized data ({args.rss_episodes} episodes x {args.rss_length} "
                  f"frames, store build + {args.rss_steps} steps, {seconds:.0f} s): {mib:.0f} MiB")
            print("  $ " + shlex.join(["python", *cmd[1:]]))
    return 0


def print_throughput(args, ac: dict, pt: dict) -> None:
    video = f"{args.video_size[0]}x{args.video_size[1]} video"
    print("\n| measurement | package | official-style | ratio | losses |")
    print("|---|---|---|---|---|")
    print(f"| AC training steps/s incl. data (ac-tiny, batch 16, {video}) | {ac['store_sps']:.2f} (feature store) "
          f"| {ac['reencode_sps']:.2f} (decode + encode each step) | {ac['store_sps'] / ac['reencode_sps']:.2f}x | "
          f"first {ac['loss_steps']} equal to {ac['loss_diff']:.1e} |")
    print(f"| pretraining steps/s, step only (tiny-pretrain, batch 16) | {pt['package_sps']:.2f} | "
          f"{pt['official_sps']:.2f} | {pt['package_sps'] / pt['official_sps']:.2f}x | "
          f"first {pt['loss_steps']} equal to {pt['loss_diff']:.1e} |")
    print(f"\nfirst AC losses, store / re-encode: {ac['first_losses'][0]} / {ac['first_losses'][1]}")
    print(f"feature store: {ac['frames']} frames encoded once in {ac['build_s']:.1f} s "
          f"(= {ac['build_s'] * ac['reencode_sps']:.0f} re-encode steps' time)")
    print("\nFLOP model of one AC clip (analytic): re-encoding adds the encoder forward to the predictor step")
    print("| config | encoder fwd GFLOP | predictor fwd+bwd GFLOP | re-encode / store compute |")
    print("|---|---|---|---|")
    for name, (enc, pred, grid, frames, steps, recompute) in FLOP_ROWS.items():
        e, p_ = ac_clip_flops(enc, pred, grid, frames, steps, recompute)
        print(f"| {name} | {e / 1e9:.2f} | {p_ / 1e9:.2f} | {(e + p_) / p_:.2f}x |")
    e, p_ = ac_clip_flops(*FLOP_ROWS["ac-tiny (ViT-tiny 64 px, predictor 128 x 4)"])
    print(f"ac-tiny measured on this machine: store path {16 * p_ / 1e9 * ac['store_sps']:.1f} GFLOP/s achieved, "
          f"re-encode path {16 * (e + p_) / 1e9 * ac['reencode_sps']:.1f} GFLOP/s (batch 16)")


if __name__ == "__main__":
    sys.exit(main())
