"""Action-conditioned predictor training on a frozen encoder (V-JEPA 2-AC), as one plain loop.

Latents ``h`` of a clip are ``[B, T, N, D]`` (frame t's patch tokens, layer-normed when ``normalize_reps``),
``actions`` are ``[B, T-1, 7]`` (action t takes frame t to t+1) and ``states`` ``[B, T, 7]``.

Loss = teacher forcing + rollout, each ``mean(|pred - target| ** loss_exp) / loss_exp``:
- teacher forcing: one block-causal pass over ground-truth frames 0..T-2 predicts frames 1..T-1;
- rollout: from ground-truth frame 0 and state 0 only, ``auto_steps`` predictions are made one after another,
  each fed back as the next input frame, exactly as a planner rolls the model out. States after frame 0 are
  integrated from the actions with ``droid_data.integrate_actions`` (planning has nothing else). The
  prediction made at step k is compared with frame k (k = 1..auto_steps) and gradients flow through every step.

The released V-JEPA 2-AC code (and the public checkpoint, see docs/ac_training.md) fed the model's prediction
of frame 2 into the slot of frame 1 in the rollout term; ``rollout`` below cannot make that mistake because
every step consumes exactly the latent it produced one step earlier.
"""
from __future__ import annotations

import math
import os
import random
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from droid_data.clips import clip_stride
from vjepa_ac import ac_eval
from vjepa_ac.config import to_dict
from vjepa_ac.distributed import DistInfo, all_reduce_mean, barrier, init_distributed
from vjepa_ac.metrics_log import MetricsLogger
from vjepa_ac.optim import DivergenceGuard, build_adamw
from vjepa_ac.runtime import (
    build_encoder,
    build_predictor,
    encode,
    encoder_spec_from_pretrain_config,
    normalize_latents,
    rollout,
)
from vjepa_ac.schedules import LR_SCHEDULES, LRScheduler, WDScheduler

PRESET_DIR = Path(__file__).resolve().parent / "configs"
CHECKPOINT_FORMAT = "vjepa_ac.ac_checkpoint.v1"


@dataclass
class ACTrainingConfig:
    """Everything a V-JEPA 2-AC training run needs; presets live in ``vjepa_ac/configs/ac-*.yaml``.

    The schedule fields carry the names ``vjepa_ac.schedules.LRScheduler`` / ``WDScheduler`` read.
    """

    # -- frozen encoder: ``vjepa_ac.models.<encoder_name>(img_size, patch_size, num_frames=tubelet_size,
    #    tubelet_size, **encoder_kwargs)``, weights from ``encoder_checkpoint_key`` of the checkpoint file
    encoder_name: str = "vit_giant_xformers"
    encoder_kwargs: dict[str, Any] = field(default_factory=lambda: {"use_rope": True, "uniform_power": True})
    encoder_checkpoint_key: str = "target_encoder"
    img_size: int = 256
    patch_size: int = 16
    tubelet_size: int = 2
    normalize_reps: bool = True
    # -- action-conditioned predictor (``VisionTransformerPredictorAC``)
    predictor_embed_dim: int = 1024
    predictor_depth: int = 24
    predictor_num_heads: int = 16
    predictor_num_frames: int = 64  # attention-mask capacity in frames (x tubelet); 64 = 32 steps, as the hub
    use_activation_checkpointing: bool = False
    # -- data
    frames_per_clip: int = 8
    fps: float = 4.0  # clip frame rate; frame step = ceil(video_fps / fps) as the official loader
    camera: str = "left"  # which camera of each episode is encoded (serial, or role: left/right/ext1/ext2/wrist)
    crop_aspect: float = 1.0  # center crop width/height before resizing (1.0 = square, as planning encodes)
    batch_size: int = 8  # per process
    num_workers: int = 0
    val_fraction: float = 0.05  # share of episodes held out for evaluation (at least one)
    feature_cache: bool = True  # encode the data once into a zarr feature store and train from it
    cache_dtype: str = "float16"  # storage dtype of cached features
    # -- loss
    auto_steps: int = 2
    loss_exp: float = 1.0
    # -- optimisation (official droid-256px-8f: 315 epochs x 300 it, warmup 15 epochs, anneal 15 epochs)
    lr: float = 4.25e-4
    start_lr: float = 7.5e-5
    final_lr: float = 0.0
    warmup_steps: int = 4500
    total_steps: int = 94500
    lr_schedule: str = "wsd"
    decay_fraction: float = 0.05  # wsd: share of the post-warmup steps spent decaying (4500 / 90000)
    weight_decay: float = 0.04
    final_weight_decay: float = 0.04
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    clip_grad: float | None = None
    use_bfloat16: bool = True  # bf16 autocast on CUDA; CPU always runs float32
    # -- run
    seed: int = 239
    log_every: int = 10
    eval_every: int = 1000
    eval_clips: int = 256  # held-out clips per evaluation (spread evenly over the held-out windows)
    checkpoint_every: int = 1000

    def __post_init__(self):
        def need(cond: bool, name: str, expected: str):
            if not cond:
                raise ValueError(f"ACTrainingConfig.{name}: expected {expected}, got {getattr(self, name)!r}")

        need(self.img_size % self.patch_size == 0, "img_size", f"a multiple of patch_size={self.patch_size}")
        need(self.frames_per_clip >= 2, "frames_per_clip", "at least 2")
        need(0 <= self.auto_steps <= self.frames_per_clip - 1, "auto_steps",
             f"0..frames_per_clip-1 = 0..{self.frames_per_clip - 1}")
        need(self.predictor_num_frames // self.tubelet_size >= self.frames_per_clip, "predictor_num_frames",
             f">= frames_per_clip * tubelet_size = {self.frames_per_clip * self.tubelet_size}")
        need(self.loss_exp > 0, "loss_exp", "> 0")
        need(self.fps > 0, "fps", "> 0")
        need(self.crop_aspect > 0, "crop_aspect", "> 0")
        need(self.batch_size >= 1, "batch_size", ">= 1")
        need(0.0 <= self.val_fraction < 1.0, "val_fraction", "in [0, 1)")
        need(math.isfinite(self.lr) and self.lr > 0, "lr", "a finite learning rate > 0")
        for name in ("start_lr", "final_lr", "weight_decay", "final_weight_decay", "eps"):
            need(math.isfinite(getattr(self, name)) and getattr(self, name) >= 0, name, "finite and >= 0")
        need(self.clip_grad is None or (math.isfinite(self.clip_grad) and self.clip_grad > 0), "clip_grad",
             "None or finite and > 0")
        need(self.lr_schedule in LR_SCHEDULES, "lr_schedule", f"one of {LR_SCHEDULES}")
        need(0 <= self.warmup_steps <= self.total_steps, "warmup_steps", f"0..total_steps={self.total_steps}")
        need(self.cache_dtype in ("float16", "float32", "bfloat16"), "cache_dtype", "float16, float32 or bfloat16")
        for name in ("log_every", "eval_every", "checkpoint_every", "eval_clips", "total_steps"):
            need(getattr(self, name) >= 1, name, ">= 1")


def load_ac_config(name_or_path: str | os.PathLike, overrides=()) -> ACTrainingConfig:
    """A preset name (``ac-tiny``, ``ac-droid-256px-8f``, ...) or YAML path, plus ``key=value`` overrides."""
    from vjepa_ac.config import load_config

    return load_config(ACTrainingConfig, name_or_path, PRESET_DIR, overrides)


# ----------------------------------------------------------------------------------------------------------
# models


def encoder_spec(cfg: ACTrainingConfig) -> dict[str, Any]:
    """Factory name and keyword arguments that rebuild the frozen encoder (stored in checkpoints)."""
    kwargs = {"img_size": cfg.img_size, "patch_size": cfg.patch_size, "num_frames": cfg.tubelet_size,
              "tubelet_size": cfg.tubelet_size}
    kwargs.update(cfg.encoder_kwargs)
    return {"name": cfg.encoder_name, "kwargs": kwargs}


def predictor_spec(cfg: ACTrainingConfig, embed_dim: int) -> dict[str, Any]:
    """Keyword arguments of ``vit_ac_predictor`` (official names) for this config and encoder width."""
    return {"img_size": cfg.img_size, "patch_size": cfg.patch_size, "num_frames": cfg.predictor_num_frames,
            "tubelet_size": cfg.tubelet_size, "embed_dim": embed_dim,
            "predictor_embed_dim": cfg.predictor_embed_dim, "depth": cfg.predictor_depth,
            "num_heads": cfg.predictor_num_heads, "is_frame_causal": True, "use_rope": True,
            "action_embed_dim": 7, "use_extrinsics": False,
            "use_activation_checkpointing": cfg.use_activation_checkpointing}


def resolve_encoder_spec(cfg: ACTrainingConfig, checkpoint: str | os.PathLike | None) -> dict[str, Any]:
    """``encoder_spec(cfg)``, or with ``encoder_name: from_checkpoint`` the architecture recorded in a
    ``scripts/pretrain.py`` checkpoint (its ``config`` entry), so tiny custom encoders need no YAML copy."""
    if cfg.encoder_name != "from_checkpoint":
        return encoder_spec(cfg)
    if checkpoint is None:
        raise ValueError("ACTrainingConfig.encoder_name: 'from_checkpoint' needs an encoder checkpoint "
                         "(--encoder-checkpoint), got none")
    from vjepa_ac.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint, expected="a checkpoint written by scripts/pretrain.py (encoder_name "
                           "'from_checkpoint' reads the architecture from its 'config'; for official checkpoints "
                           "set encoder_name, e.g. vit_giant_xformers)", required=("config",))
    return encoder_spec_from_pretrain_config(ckpt["config"])


def load_frozen_encoder(cfg: ACTrainingConfig, checkpoint: str | os.PathLike | None) -> nn.Module:
    """Build the encoder; load ``cfg.encoder_checkpoint_key`` from ``checkpoint`` (None: keep random init).

    The encoder is put in eval mode with gradients off (it is never trained here), and its token grid is
    checked against ``img_size`` / ``patch_size`` of the config.
    """
    encoder = build_encoder(resolve_encoder_spec(cfg, checkpoint))
    if checkpoint is not None:
        from vjepa_ac.checkpoint import load_pretrained

        load_pretrained(encoder, checkpoint, cfg.encoder_checkpoint_key)
    encoder.requires_grad_(False).eval()
    probe = torch.zeros(1, cfg.img_size, cfg.img_size, 3, dtype=torch.uint8)
    tokens = encode(encoder, probe, normalize_reps=False, tubelet_size=cfg.tubelet_size).shape[1]
    grid = cfg.img_size // cfg.patch_size
    if tokens != grid * grid:
        raise ValueError(f"encoder of {checkpoint}: {tokens} tokens per {cfg.img_size}px frame, but the config's "
                         f"img_size={cfg.img_size} / patch_size={cfg.patch_size} give {grid * grid}; "
                         f"make img_size and patch_size match the encoder")
    return encoder


# ----------------------------------------------------------------------------------------------------------
# predictions and losses


def teacher_forcing(predictor: nn.Module, h: torch.Tensor, actions: torch.Tensor, states: torch.Tensor,
                    normalize_reps: bool) -> torch.Tensor:
    """Ground-truth latents ``[B, T, N, D]`` of frames 0..T-1 -> predictions ``[B, T, N, D]`` of frames 1..T.

    ``actions`` / ``states`` are ``[B, T, 7]`` (one per input frame). One block-causal pass.
    """
    b, t, n, d = h.shape
    z = predictor(h.reshape(b, t * n, d), actions, states)
    return normalize_latents(z.reshape(b, t, n, -1), normalize_reps)


def latent_loss(pred: torch.Tensor, target: torch.Tensor, loss_exp: float) -> torch.Tensor:
    """``mean(|pred - target| ** loss_exp) / loss_exp`` (L1 for loss_exp = 1)."""
    return (pred - target).abs().pow(loss_exp).mean() / loss_exp


class ACObjective(nn.Module):
    """The training loss as one module, so DDP sees every predictor call (teacher forcing and rollout)."""

    def __init__(self, predictor: nn.Module, auto_steps: int, loss_exp: float, normalize_reps: bool):
        super().__init__()
        self.predictor = predictor
        self.auto_steps = auto_steps
        self.loss_exp = loss_exp
        self.normalize_reps = normalize_reps

    def forward(self, h: torch.Tensor, actions: torch.Tensor, states: torch.Tensor) -> dict[str, torch.Tensor]:
        """h ``[B, T, N, D]`` (targets and inputs), actions ``[B, T-1, 7]``, states ``[B, T, 7]``."""
        check_clip(h, actions, states)
        z_tf = teacher_forcing(self.predictor, h[:, :-1], actions, states[:, :-1], self.normalize_reps)
        tf_loss = latent_loss(z_tf, h[:, 1:], self.loss_exp)
        if self.auto_steps == 0:
            rollout_loss = torch.zeros((), device=h.device, dtype=tf_loss.dtype)
        else:
            steps = self.auto_steps
            z_ar = rollout(self.predictor, h[:, 0], states[:, 0], actions[:, :steps], self.normalize_reps)
            rollout_loss = latent_loss(z_ar, h[:, 1:steps + 1], self.loss_exp)
        return {"loss": tf_loss + rollout_loss, "tf_loss": tf_loss, "rollout_loss": rollout_loss}


def check_clip(h: torch.Tensor, actions: torch.Tensor, states: torch.Tensor) -> None:
    if h.dim() != 4:
        raise ValueError(f"latents: expected [B, T, N, D], got {tuple(h.shape)}")
    b, t = h.shape[:2]
    if tuple(actions.shape) != (b, t - 1, 7):
        raise ValueError(f"actions: expected [B, T-1, 7] = {(b, t - 1, 7)}, got {tuple(actions.shape)}")
    if tuple(states.shape) != (b, t, 7):
        raise ValueError(f"states: expected [B, T, 7] = {(b, t, 7)}, got {tuple(states.shape)}")


@torch.no_grad()
def evaluate(predictor: nn.Module, clips, normalize_reps: bool, horizon: int) -> ac_eval.HorizonErrors:
    """Per-horizon latent L1 (teacher forcing, rollout, copy-last-frame) summed over all ranks.

    ``clips`` yields ``(h, actions, states)`` as ``clip_latents`` returns them, with ``horizon + 1`` frames;
    the rollout runs the whole clip from frame 0. Every rank must call it (the sums are all-reduced).
    """
    acc = ac_eval.HorizonErrors.zeros(horizon)
    for h, actions, states in clips:
        z_tf = teacher_forcing(predictor, h[:, :-1], actions, states[:, :-1], normalize_reps)
        z_ar = rollout(predictor, h[:, 0], states[:, 0], actions, normalize_reps)
        acc = acc + ac_eval.horizon_errors(h, z_tf, z_ar)
    return acc.all_reduce()


# ----------------------------------------------------------------------------------------------------------
# checkpoints


def checkpoint_config(cfg: ACTrainingConfig, encoder: nn.Module, data_info: dict[str, Any],
                      encoder_checkpoint: str | None) -> dict[str, Any]:
    """The plain dict stored under ``config``: enough to rebuild encoder and predictor and to encode frames."""
    embed_dim = int(encoder.embed_dim)
    return {
        "format": CHECKPOINT_FORMAT,
        "encoder": resolve_encoder_spec(cfg, encoder_checkpoint),
        "predictor": predictor_spec(cfg, embed_dim),
        "normalize_reps": cfg.normalize_reps,
        "img_size": cfg.img_size,
        "crop_aspect": cfg.crop_aspect,
        "tubelet_size": cfg.tubelet_size,
        "fps": cfg.fps,
        "frame_step": data_info.get("frame_step"),
        "video_fps": data_info.get("video_fps"),
        "camera": cfg.camera,
        "frames_per_clip": cfg.frames_per_clip,
        "encoder_checkpoint": None if encoder_checkpoint is None else str(encoder_checkpoint),
        "encoder_checkpoint_key": cfg.encoder_checkpoint_key,
        "training": to_dict(cfg),
    }


# ----------------------------------------------------------------------------------------------------------
# data order: a deterministic function of (seed, epoch, rank), so a resumed run sees the same batches


def epoch_batches(num_items: int, batch_size: int, epoch: int, seed: int, dist: DistInfo) -> list[list[int]]:
    """Shuffled, rank-sharded, full batches of item indices for one epoch (drop_last, like the official)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(num_items, generator=g).tolist()
    per_rank = num_items // dist.world_size
    mine = order[dist.rank * per_rank:(dist.rank + 1) * per_rank]
    n_batches = len(mine) // batch_size
    return [mine[i * batch_size:(i + 1) * batch_size] for i in range(n_batches)]


def batch_stream(dataset, cfg: ACTrainingConfig, dist: DistInfo, start_step: int) -> Iterator[dict]:
    """Endless stream of training batches starting at global step ``start_step`` (resume-exact)."""
    n_batches = len(dataset) // dist.world_size // cfg.batch_size
    if n_batches == 0:
        raise ValueError(f"training data: {len(dataset)} clips cannot fill one batch of {cfg.batch_size} per "
                         f"process on {dist.world_size} process(es); use more episodes or a smaller batch_size")
    epoch, offset = divmod(start_step, n_batches)
    loader_kwargs = {"num_workers": cfg.num_workers, "collate_fn": _stack}
    while True:
        if hasattr(dataset, "set_epoch"):  # datasets drawing random windows draw those of this epoch
            dataset.set_epoch(epoch)
        batches = epoch_batches(len(dataset), cfg.batch_size, epoch, cfg.seed, dist)[offset:]
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches, **loader_kwargs)
        yield from loader
        epoch, offset = epoch + 1, 0


def _stack(items: list[dict]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([torch.as_tensor(it[k]) for it in items]) for k in items[0]}


# ----------------------------------------------------------------------------------------------------------
# the loop


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _autocast(cfg: ACTrainingConfig, device: torch.device):
    if device.type == "cuda" and cfg.use_bfloat16:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def train(cfg: ACTrainingConfig, train_set, val_set, out_dir: str | os.PathLike, *,
          encoder: nn.Module, data_info: dict[str, Any] | None = None, encoder_checkpoint: str | None = None,
          max_steps: int | None = None, device: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Train the AC predictor; resumes from ``out_dir/latest.pt`` when it exists.

    ``train_set`` / ``val_set`` yield dicts with ``latents`` ``[T, N, D]`` (raw encoder features, or uint8
    ``frames`` ``[T, H, W, 3]`` to encode on the fly), ``actions`` ``[T-1, 7]`` and ``states`` ``[T, 7]``.
    Stops at ``cfg.total_steps`` or after ``max_steps`` optimiser steps in this call, whichever is first.
    Returns the last logged metrics and the last evaluation.
    """
    from tqdm.auto import tqdm

    from vjepa_ac.checkpoint import atomic_save, load_checkpoint, remove_stale_temps

    dist = init_distributed(device)
    out_dir = Path(out_dir)
    if dist.is_main:
        remove_stale_temps(out_dir)  # left by a crash during a checkpoint write
    seed_everything(cfg.seed + dist.rank)
    encoder = encoder.to(dist.device).eval().requires_grad_(False)
    predictor = build_predictor(predictor_spec(cfg, int(encoder.embed_dim))).to(dist.device)
    predictor.extrinsics_encoder.requires_grad_(False)  # kept for checkpoint compatibility, never used
    objective = ACObjective(predictor, cfg.auto_steps, cfg.loss_exp, cfg.normalize_reps)
    model = objective
    if dist.world_size > 1:
        ids = [dist.device.index] if dist.device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(objective, device_ids=ids)
    optimizer = build_adamw({"predictor": predictor}, cfg.lr, cfg.weight_decay, betas=tuple(cfg.betas),
                            eps=cfg.eps)
    lr_sched, wd_sched = LRScheduler(optimizer, cfg), WDScheduler(optimizer, cfg)
    ckpt_config = checkpoint_config(cfg, encoder, data_info or {}, encoder_checkpoint)

    step = 0
    latest = out_dir / "latest.pt"
    if latest.exists():
        state = load_checkpoint(latest, map_location=dist.device, expected="an AC-training checkpoint",
                                required=("predictor", "step"))
        predictor.load_state_dict(state["predictor"])
        optimizer.load_state_dict(state["opt"] if "opt" in state else state["optimizer"])  # "optimizer": older runs
        step = int(state["step"])
        if dist.is_main:
            print(f"resumed from {latest} at step {step}")

    guard = DivergenceGuard(predictor.parameters())
    logger = MetricsLogger(out_dir)
    stop = cfg.total_steps if max_steps is None else min(cfg.total_steps, step + max_steps)
    if step >= stop and dist.is_main:
        print(f"{latest} is already at step {step} of total_steps={cfg.total_steps}: nothing to train "
              f"(raise total_steps or use another --out)")
    stream = batch_stream(train_set, cfg, dist, step)
    batches_per_epoch = len(train_set) // dist.world_size // cfg.batch_size
    bar = tqdm(total=stop, initial=step, disable=not (progress and dist.is_main), desc="train_ac", unit="step")
    last: dict[str, Any] = {}
    last_eval = None
    while step < stop:
        batch = next(stream)
        step += 1
        lr, wd = lr_sched.step(step), wd_sched.step(step)
        with _autocast(cfg, dist.device):
            h, actions, states = clip_latents(batch, encoder, cfg, dist.device)
            losses = model(h, actions, states)
        if not torch.isfinite(losses["loss"]):  # stop before the weights are touched; latest.pt stays good
            raise FloatingPointError(f"step {step}: non-finite loss {losses['loss'].item()} "
                                     f"(tf {losses['tf_loss'].item()}, rollout {losses['rollout_loss'].item()})")
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(predictor.parameters(), cfg.clip_grad or math.inf)
        optimizer.step()
        guard.check(step)  # stops a diverged run here, before any checkpoint is written

        evaluating = step % cfg.eval_every == 0 or step == stop
        if evaluating:
            last_eval = run_eval(predictor, val_set, cfg, dist, out_dir, step, encoder)
        if step % cfg.log_every == 0 or evaluating:
            last = {k: all_reduce_mean(v.detach().float()).item() for k, v in losses.items()}
            last.update(lr=lr, wd=wd, grad_norm=float(grad_norm))
            logger.log(step, {**last, **(last_eval.summary() if evaluating and last_eval else {})})
            bar.set_postfix(loss=f"{last['loss']:.4f}", tf=f"{last['tf_loss']:.4f}",
                            roll=f"{last['rollout_loss']:.4f}")
        bar.update(1)
        if step % cfg.checkpoint_every == 0 or step == stop:
            guard.check_optimizer(optimizer, step)
            if dist.is_main:
                atomic_save({"encoder": encoder.state_dict(), "predictor": predictor.state_dict(),
                             "opt": optimizer.state_dict(), "scaler": None, "epoch": step // batches_per_epoch,
                             "step": step, "config": ckpt_config}, latest)
            barrier()
    bar.close()
    logger.close()
    return {"step": step, "metrics": last, "eval": last_eval}


def clip_latents(batch: dict, encoder: nn.Module, cfg: ACTrainingConfig, device) -> tuple:
    """A batch -> (latents ``[B, T, N, D]`` float, actions, states) on ``device``; encodes frames if needed."""
    actions = batch["actions"].to(device, torch.float32)
    states = batch["states"].to(device, torch.float32)
    if "latents" in batch:
        h = normalize_latents(batch["latents"].to(device, torch.float32), cfg.normalize_reps)
    else:
        frames = batch["frames"]  # uint8 [B, T, H, W, 3]
        b, t = frames.shape[:2]
        h = encode(encoder, frames.flatten(0, 1), cfg.normalize_reps, cfg.tubelet_size)
        h = h.view(b, t, *h.shape[1:])
    return h, actions, states


def run_eval(predictor, val_set, cfg, dist, out_dir, step, encoder) -> ac_eval.HorizonErrors | None:
    """Evaluate on up to ``cfg.eval_clips`` held-out clips spread evenly over ``val_set``; rank 0 writes the
    table and plot to ``out_dir/eval``."""
    if val_set is None or len(val_set) == 0:
        return None
    n = len(val_set)
    picks = sorted({int(i) for i in np.linspace(0, n - 1, min(n, cfg.eval_clips))})[dist.rank::dist.world_size]
    groups = [picks[s:s + cfg.batch_size] for s in range(0, len(picks), cfg.batch_size)]
    clips = (clip_latents(_stack([val_set[i] for i in g]), encoder, cfg, dist.device) for g in groups)
    predictor.eval()
    errors = evaluate(predictor, clips, cfg.normalize_reps, cfg.frames_per_clip - 1)
    predictor.train()
    if dist.is_main:
        ac_eval.write_report(errors, Path(out_dir) / "eval", step)
    return errors


# ----------------------------------------------------------------------------------------------------------
# end to end: data source -> (feature store) -> datasets -> train


def write_random_encoder(cfg: ACTrainingConfig, path: Path) -> None:
    """Save a randomly initialised encoder (seeded with ``cfg.seed``) under key ``encoder``, once, so feature
    stores, resumed runs and the planner all use exactly these weights."""
    from vjepa_ac.checkpoint import atomic_save

    if not path.exists():
        torch.manual_seed(cfg.seed)
        atomic_save({"encoder": build_encoder(resolve_encoder_spec(cfg, None)).state_dict()}, path)


def _replace(cfg: ACTrainingConfig, **changes) -> ACTrainingConfig:
    import dataclasses

    return dataclasses.replace(cfg, **changes)


def run(data: str | os.PathLike, encoder_checkpoint: str | os.PathLike | None, config: str | os.PathLike,
        out_dir: str | os.PathLike, max_steps: int | None = None, progress: bool = True) -> dict[str, Any]:
    """What ``scripts/train_ac.py`` does: load the config, the encoder and the data, then ``train``.

    ``data``: a feature store (``build_feature_cache``), or DROID raw episodes (root folder or index file).
    With ``feature_cache`` on, raw episodes are encoded once into ``out_dir/features.zarr`` (reused later).
    """
    from vjepa_ac import feature_cache as fc
    from vjepa_ac.config import save_yaml

    cfg = load_ac_config(config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dist = init_distributed()
    data = Path(data)
    if encoder_checkpoint is None and fc.is_feature_cache(data):
        # A feature store records the encoder weights that made it; the checkpoint must carry the same ones.
        attrs = fc.store_info(data)
        encoder_checkpoint = attrs["encoder_checkpoint"]
        if encoder_checkpoint is None or not Path(encoder_checkpoint).is_file():
            raise FileNotFoundError(f"{data}: the store was encoded with {encoder_checkpoint!r}, which does not "
                                    "exist here; pass --encoder-checkpoint with those weights")
        cfg = _replace(cfg, encoder_checkpoint_key=attrs["encoder_checkpoint_key"])
    if encoder_checkpoint is None:
        cfg = _replace(cfg, encoder_checkpoint_key="encoder")
        encoder_checkpoint = out_dir / "random_encoder.pt"
        if dist.is_main:
            print(f"no encoder checkpoint: using a randomly initialised encoder, saved to {encoder_checkpoint}")
            write_random_encoder(cfg, encoder_checkpoint)
        barrier()
    encoder_checkpoint = str(encoder_checkpoint)
    encoder = load_frozen_encoder(cfg, encoder_checkpoint).to(dist.device)
    if dist.is_main:
        save_yaml(cfg, out_dir / "config.yaml")
    spec = resolve_encoder_spec(cfg, encoder_checkpoint)

    if fc.is_feature_cache(data):
        store = data
    elif cfg.feature_cache:
        store = out_dir / "features.zarr"
        if dist.is_main and not store.exists():
            fc.build_feature_cache(data, store, encoder, cfg, spec, encoder_checkpoint, progress=progress)
        barrier()
    else:
        store = None

    if store is not None:
        attrs = fc.check_store(store, fc.store_attrs(cfg, spec, encoder_checkpoint, *_token_shape(encoder, cfg)))
        train_eps, val_eps = fc.split_episodes(len(attrs["episodes"]), cfg.val_fraction)
        train_set = fc.FeatureClipDataset(store, cfg.frames_per_clip, cfg.fps, train_eps)
        val_set = fc.FeatureClipDataset(store, cfg.frames_per_clip, cfg.fps, val_eps) if val_eps else None
        counts = (len(train_eps), len(val_eps))
    else:
        train_set, val_set, counts = fc.frame_datasets(data, cfg)
    video_fps = fc.source_video_fps(store if store is not None else data)
    data_info = {"video_fps": video_fps, "frame_step": clip_stride(video_fps, cfg.fps)}
    if dist.is_main:
        print(f"data: {len(train_set)} training clips from {counts[0]} episodes, "
              f"{0 if val_set is None else len(val_set)} held-out clips from {counts[1]} episodes")
    result = train(cfg, train_set, val_set, out_dir, encoder=encoder, data_info=data_info,
                   encoder_checkpoint=encoder_checkpoint, max_steps=max_steps, progress=progress)
    if dist.is_main and result["eval"] is not None:
        print(f"held-out latent L1 at step {result['step']} (ratios < 1 beat copy-last-frame):")
        print(result["eval"].table())
    return result


def _token_shape(encoder: nn.Module, cfg: ACTrainingConfig) -> tuple[int, int]:
    grid = cfg.img_size // cfg.patch_size
    return grid * grid, int(encoder.embed_dim)
