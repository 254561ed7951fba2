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
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from droid_data.clips import clip_stride
from vjepa_ac import ac_eval
from vjepa_ac.checkpoint import atomic_save, load_checkpoint, remove_stale_temps
from vjepa_ac.config import finite_nonnegative, need, to_dict
from vjepa_ac.distributed import DistInfo, all_reduce_mean, barrier, init_distributed
from vjepa_ac.metrics_log import MetricsLogger
from vjepa_ac.optim import DivergenceGuard, TrainingDiverged, build_adamw
from vjepa_ac.runtime import (
    build_encoder,
    build_predictor,
    encode,
    encoder_spec_from_pretrain_config,
    normalize_latents,
    rollout,
)
from vjepa_ac.schedules import LR_SCHEDULES, LRScheduler, WDScheduler
from vjepa_ac.sharding import (
    PARALLEL_MODES,
    dcp_path,
    full_model_state,
    load_sharded,
    save_sharded,
    scalar,
    shard,
)

PRESET_DIR = Path(__file__).resolve().parent / "configs"
CHECKPOINT_FORMAT = "vjepa_ac.ac_checkpoint.v1"


@dataclass
class ACDataConfig:
    """Which clips are read and how: DROID-format episodes, a droid_data clip cache or a feature store."""

    # data root: DROID raw episodes (folder or index file), LeRobot dataset, droid_data cache or feature store
    # (DIR/features.zarr); None: simulator episodes generated on first use
    path: str | None = None
    frames_per_clip: int = 8  # frames per training clip
    fps: float = 4.0  # clip frame rate; frame step = ceil(video_fps / fps) as the official loader
    camera: str = "left"  # camera encoded: serial, or role left/right/ext1/ext2/wrist
    crop_aspect: float = 1.0  # center crop width/height before resizing (1.0 = square, as planning encodes)
    batch_size: int = 8  # clips per step and process
    num_workers: int = 0  # DataLoader worker processes
    val_fraction: float = 0.05  # share of episodes held out for evaluation (at least one)
    feature_cache: bool = True  # encode the data once into DIR/features.zarr and train from it
    cache_dtype: str = "float16"  # storage dtype of cached features: float16, float32 or bfloat16

    def __post_init__(self):
        need(self.frames_per_clip >= 2, "data.frames_per_clip", "at least 2", self.frames_per_clip)
        need(self.fps > 0, "data.fps", "> 0", self.fps)
        need(self.crop_aspect > 0, "data.crop_aspect", "> 0", self.crop_aspect)
        need(self.batch_size >= 1, "data.batch_size", ">= 1", self.batch_size)
        need(0.0 <= self.val_fraction < 1.0, "data.val_fraction", "in [0, 1)", self.val_fraction)
        need(self.cache_dtype in ("float16", "float32", "bfloat16"), "data.cache_dtype",
             "float16, float32 or bfloat16", self.cache_dtype)


@dataclass
class ACModelConfig:
    """The frozen encoder and the action-conditioned predictor (``VisionTransformerPredictorAC``)."""

    # factory of vjepa_ac.models (vit_tiny ... vit_giant_xformers, VisionTransformer), or from_checkpoint: the
    # architecture recorded in a scripts/pretrain.py checkpoint
    encoder_name: str = "vit_giant_xformers"
    # extra keyword arguments of the encoder factory
    encoder_kwargs: dict[str, Any] = field(default_factory=lambda: {"use_rope": True, "uniform_power": True})
    # file holding the frozen encoder (pretraining/cooldown or official checkpoint); None: a random encoder
    # saved to RUN_OUT/random_encoder.pt
    encoder_checkpoint: str | None = None
    encoder_checkpoint_key: str = "target_encoder"  # entry of encoder_checkpoint to load
    img_size: int = 256  # encoder input size in pixels
    patch_size: int = 16  # encoder patch size
    tubelet_size: int = 2  # frames per tubelet (a frame is repeated to one tubelet)
    predictor_embed_dim: int = 1024  # predictor width
    predictor_depth: int = 24  # predictor blocks
    predictor_num_heads: int = 16  # predictor attention heads
    # frame capacity (x tubelet) of the official predictor, kept for checkpoints; 64 = 32 steps, as the hub. The
    # attention mask is built for each call's frames, not for this capacity
    predictor_num_frames: int = 64
    use_activation_checkpointing: bool = False  # recompute activations in backward (less memory)

    def __post_init__(self):
        need(self.img_size % self.patch_size == 0, "model.img_size", f"a multiple of patch_size={self.patch_size}",
             self.img_size)


@dataclass
class ACOptimConfig:
    """AdamW and its schedules (official droid-256px-8f: 315 epochs x 300 it, warmup 15 epochs, anneal 15)."""

    lr: float = 4.25e-4  # peak learning rate
    start_lr: float = 7.5e-5  # learning rate at step 0 (warmup start)
    final_lr: float = 0.0  # learning rate at total_steps
    warmup_steps: int = 4500  # linear warmup steps
    total_steps: int = 94500  # optimiser steps of the whole run
    lr_schedule: str = "wsd"  # cosine, wsd (warmup-stable-decay), linear or constant
    decay_fraction: float = 0.05  # wsd: share of the post-warmup steps spent decaying (4500 / 90000)
    weight_decay: float = 0.04  # AdamW weight decay at step 0
    final_weight_decay: float = 0.04  # weight decay at total_steps (cosine in between)
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW betas
    eps: float = 1e-8  # AdamW epsilon
    clip_grad: float | None = None  # max gradient norm (None: no clipping)

    def __post_init__(self):
        need(math.isfinite(self.lr) and self.lr > 0, "optim.lr", "a finite learning rate > 0", self.lr)
        for name in ("start_lr", "final_lr", "weight_decay", "final_weight_decay", "eps"):
            need(finite_nonnegative(getattr(self, name)), f"optim.{name}", "finite and >= 0", getattr(self, name))
        need(self.clip_grad is None or (math.isfinite(self.clip_grad) and self.clip_grad > 0), "optim.clip_grad",
             "None or finite and > 0", self.clip_grad)
        need(self.lr_schedule in LR_SCHEDULES, "optim.lr_schedule", f"one of {LR_SCHEDULES}", self.lr_schedule)
        need(self.total_steps >= 1, "optim.total_steps", ">= 1", self.total_steps)
        need(0 <= self.warmup_steps <= self.total_steps, "optim.warmup_steps", f"0..total_steps={self.total_steps}",
             self.warmup_steps)


@dataclass
class ACLossConfig:
    """Teacher forcing + rollout loss, each ``mean(|pred - target| ** loss_exp) / loss_exp``."""

    auto_steps: int = 2  # rollout steps of the rollout term (0: teacher forcing only)
    loss_exp: float = 1.0  # exponent p of the latent distance (1: L1)
    normalize_reps: bool = True  # layer-norm latents (targets and predictions), as the official code

    def __post_init__(self):
        need(self.loss_exp > 0, "loss.loss_exp", "> 0", self.loss_exp)


@dataclass
class ACRunConfig:
    """Where the run writes, how often it logs, evaluates and saves."""

    out: str = "runs/ac"  # run folder: latest.pt (resumed automatically), metrics.csv, tb/, eval/, features.zarr
    seed: int = 239  # seed of weights, data order and held-out picks
    max_steps: int | None = None  # stop after this many steps in this invocation (a later call resumes); None: run to total_steps
    use_bfloat16: bool = True  # bf16 autocast on CUDA; the CPU always runs float32
    log_every: int = 10  # steps between metric rows
    eval_every: int = 1000  # steps between held-out evaluations
    eval_clips: int = 256  # held-out clips per evaluation (spread evenly over the held-out windows)
    checkpoint_every: int = 1000  # steps between writes of latest.pt
    # several processes: ddp (every rank holds the whole predictor) or fsdp (FSDP2: predictor, gradients and AdamW
    # state sharded over the ranks; resumes from the sharded latest.dcp/, latest.pt holds the gathered weights)
    parallel: str = "ddp"

    def __post_init__(self):
        for name in ("log_every", "eval_every", "checkpoint_every", "eval_clips"):
            need(getattr(self, name) >= 1, f"run.{name}", ">= 1", getattr(self, name))
        need(self.parallel in PARALLEL_MODES, "run.parallel", f"one of {PARALLEL_MODES}", self.parallel)
        need(self.max_steps is None or self.max_steps >= 0, "run.max_steps", "None or >= 0", self.max_steps)


@dataclass
class ACTrainingConfig:
    """A V-JEPA 2-AC training run; presets live in ``vjepa_ac/configs/ac-*.yaml``."""

    data: ACDataConfig = field(default_factory=ACDataConfig)
    model: ACModelConfig = field(default_factory=ACModelConfig)
    optim: ACOptimConfig = field(default_factory=ACOptimConfig)
    loss: ACLossConfig = field(default_factory=ACLossConfig)
    run: ACRunConfig = field(default_factory=ACRunConfig)

    def __post_init__(self):
        frames = self.data.frames_per_clip
        need(0 <= self.loss.auto_steps <= frames - 1, "loss.auto_steps", f"0..data.frames_per_clip-1 = 0..{frames - 1}",
             self.loss.auto_steps)
        need(self.model.predictor_num_frames // self.model.tubelet_size >= frames, "model.predictor_num_frames",
             f">= data.frames_per_clip * tubelet_size = {frames * self.model.tubelet_size}",
             self.model.predictor_num_frames)


def load_ac_config(name_or_path: str | os.PathLike, overrides: dict | None = None) -> ACTrainingConfig:
    """A preset name (``ac-tiny``, ``ac-droid-256px-8f``, ...) or YAML path, plus nested overrides."""
    from vjepa_ac.config import load_config

    return load_config(ACTrainingConfig, name_or_path, PRESET_DIR, overrides)


# ----------------------------------------------------------------------------------------------------------
# models


def encoder_spec(cfg: ACTrainingConfig) -> dict[str, Any]:
    """Factory name and keyword arguments that rebuild the frozen encoder (stored in checkpoints)."""
    m = cfg.model
    kwargs = {"img_size": m.img_size, "patch_size": m.patch_size, "num_frames": m.tubelet_size,
              "tubelet_size": m.tubelet_size, **m.encoder_kwargs}
    return {"name": m.encoder_name, "kwargs": kwargs}


def predictor_spec(cfg: ACTrainingConfig, embed_dim: int) -> dict[str, Any]:
    """Keyword arguments of ``vit_ac_predictor`` (official names) for this config and encoder width."""
    m = cfg.model
    return {"img_size": m.img_size, "patch_size": m.patch_size, "num_frames": m.predictor_num_frames,
            "tubelet_size": m.tubelet_size, "embed_dim": embed_dim, "predictor_embed_dim": m.predictor_embed_dim,
            "depth": m.predictor_depth, "num_heads": m.predictor_num_heads, "is_frame_causal": True,
            "use_rope": True, "action_embed_dim": 7, "use_extrinsics": False,
            "use_activation_checkpointing": m.use_activation_checkpointing}


def resolve_encoder_spec(cfg: ACTrainingConfig, checkpoint: str | os.PathLike | None) -> dict[str, Any]:
    """``encoder_spec(cfg)``, or with ``encoder_name: from_checkpoint`` the architecture recorded in a
    ``scripts/pretrain.py`` checkpoint (its ``config`` entry), so tiny custom encoders need no YAML copy."""
    if cfg.model.encoder_name != "from_checkpoint":
        return encoder_spec(cfg)
    if checkpoint is None:
        raise ValueError("model.encoder_name: 'from_checkpoint' needs an encoder checkpoint "
                         "(--model.encoder_checkpoint), got none")
    from vjepa_ac.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint, expected="a checkpoint written by scripts/pretrain.py (encoder_name "
                           "'from_checkpoint' reads the architecture from its 'config'; for official checkpoints "
                           "set encoder_name, e.g. vit_giant_xformers)", required=("config",))
    return encoder_spec_from_pretrain_config(ckpt["config"])


def load_frozen_encoder(cfg: ACTrainingConfig, checkpoint: str | os.PathLike | None) -> nn.Module:
    """Build the encoder; load ``model.encoder_checkpoint_key`` from ``checkpoint`` (None: keep random init).

    The encoder is put in eval mode with gradients off (it is never trained here), and its token grid is
    checked against ``img_size`` / ``patch_size`` of the config.
    """
    m = cfg.model
    encoder = build_encoder(resolve_encoder_spec(cfg, checkpoint))
    if checkpoint is not None:
        from vjepa_ac.checkpoint import load_pretrained

        load_pretrained(encoder, checkpoint, m.encoder_checkpoint_key)
    encoder.requires_grad_(False).eval()
    tokens, _ = token_shape(encoder, cfg)
    grid = m.img_size // m.patch_size
    if tokens != grid * grid:
        raise ValueError(f"encoder of {checkpoint}: {tokens} tokens per {m.img_size}px frame, but the config's "
                         f"model.img_size={m.img_size} / model.patch_size={m.patch_size} give {grid * grid}; "
                         f"make img_size and patch_size match the encoder")
    return encoder


def token_shape(encoder: nn.Module, cfg: ACTrainingConfig) -> tuple[int, int]:
    """(tokens per frame N, width D) of the encoder's latents, measured on a blank frame."""
    size = cfg.model.img_size
    probe = torch.zeros(1, size, size, 3, dtype=torch.uint8)
    n, d = encode(encoder, probe, normalize_reps=False, tubelet_size=cfg.model.tubelet_size).shape[1:]
    return int(n), int(d)


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
    return {
        "format": CHECKPOINT_FORMAT,
        "encoder": resolve_encoder_spec(cfg, encoder_checkpoint),
        "predictor": predictor_spec(cfg, int(encoder.embed_dim)),
        "normalize_reps": cfg.loss.normalize_reps,
        "img_size": cfg.model.img_size,
        "crop_aspect": cfg.data.crop_aspect,
        "tubelet_size": cfg.model.tubelet_size,
        "fps": cfg.data.fps,
        "frame_step": data_info.get("frame_step"),
        "video_fps": data_info.get("video_fps"),
        "camera": cfg.data.camera,
        "frames_per_clip": cfg.data.frames_per_clip,
        "encoder_checkpoint": None if encoder_checkpoint is None else str(encoder_checkpoint),
        "encoder_checkpoint_key": cfg.model.encoder_checkpoint_key,
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


def batches_per_epoch(dataset, cfg: ACTrainingConfig, dist: DistInfo) -> int:
    n = len(dataset) // dist.world_size // cfg.data.batch_size
    if n == 0:
        raise ValueError(f"training data: {len(dataset)} clips cannot fill one batch of data.batch_size="
                         f"{cfg.data.batch_size} per process on {dist.world_size} process(es); use more episodes "
                         f"or a smaller batch_size")
    return n


def batch_stream(dataset, cfg: ACTrainingConfig, dist: DistInfo, start_step: int) -> Iterator[dict]:
    """Endless stream of training batches starting at global step ``start_step`` (resume-exact)."""
    epoch, offset = divmod(start_step, batches_per_epoch(dataset, cfg, dist))
    while True:
        if hasattr(dataset, "set_epoch"):  # datasets drawing random windows draw those of this epoch
            dataset.set_epoch(epoch)
        batches = epoch_batches(len(dataset), cfg.data.batch_size, epoch, cfg.run.seed, dist)[offset:]
        yield from torch.utils.data.DataLoader(dataset, batch_sampler=batches, num_workers=cfg.data.num_workers,
                                               collate_fn=_stack)
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
    if device.type == "cuda" and cfg.run.use_bfloat16:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def train(cfg: ACTrainingConfig, train_set, val_set, *, encoder: nn.Module, data_info: dict[str, Any] | None = None,
          encoder_checkpoint: str | None = None, device: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Train the AC predictor in ``cfg.run.out``; resumes from its ``latest.pt`` when it exists.

    ``train_set`` / ``val_set`` yield dicts with ``latents`` ``[T, N, D]`` (raw encoder features, or uint8
    ``frames`` ``[T, H, W, 3]`` to encode on the fly), ``actions`` ``[T-1, 7]`` and ``states`` ``[T, 7]``.
    Stops at ``optim.total_steps`` or after ``run.max_steps`` steps in this call, whichever is first.
    Returns the step reached, the last logged metrics and the last evaluation.
    """
    from tqdm.auto import tqdm

    # -- setup: processes, models, optimizer, schedules
    dist = init_distributed(device)
    out_dir, latest = Path(cfg.run.out), Path(cfg.run.out) / "latest.pt"
    if dist.is_main:
        remove_stale_temps(out_dir)  # left by a crash during a checkpoint write
    seed_everything(cfg.run.seed + dist.rank)
    encoder = encoder.to(dist.device).eval().requires_grad_(False)
    predictor = build_predictor(predictor_spec(cfg, int(encoder.embed_dim))).to(dist.device)
    predictor.extrinsics_encoder.requires_grad_(False)  # kept for checkpoint compatibility, never used
    model = objective = ACObjective(predictor, cfg.loss.auto_steps, cfg.loss.loss_exp, cfg.loss.normalize_reps)
    sharded = dist.world_size > 1 and cfg.run.parallel == "fsdp"
    if sharded:  # the rollout term and evaluation run blocks through forward_next / forward_cached
        shard(predictor, predictor.predictor_blocks, dist, [(predictor, "forward_next"),
              *((blk, "forward_cached") for blk in predictor.predictor_blocks)])
    elif dist.world_size > 1:
        ids = [dist.device.index] if dist.device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(objective, device_ids=ids)
    o = cfg.optim
    optimizer = build_adamw({"predictor": predictor}, o.lr, o.weight_decay, betas=tuple(o.betas), eps=o.eps)
    lr_sched, wd_sched = LRScheduler(optimizer, o), WDScheduler(optimizer, o)
    ckpt_config = checkpoint_config(cfg, encoder, data_info or {}, encoder_checkpoint)

    # -- resume
    step = 0
    if sharded and dcp_path(latest).exists():
        step = load_sharded(latest, predictor, optimizer, ["step"])["step"]
        if dist.is_main:
            print(f"resumed from {dcp_path(latest)} at step {step}")
    elif latest.exists():
        if sharded:
            raise FileNotFoundError(f"{latest}: run.parallel=fsdp resumes from the sharded {dcp_path(latest)}, "
                                    "which is missing (resume with run.parallel=ddp, or start a new run.out)")
        step = load_training_state(latest, predictor, optimizer, dist.device)
        if dist.is_main:
            print(f"resumed from {latest} at step {step}")
    stop = o.total_steps if cfg.run.max_steps is None else min(o.total_steps, step + cfg.run.max_steps)
    if step >= stop and dist.is_main:
        print(f"{latest} is already at step {step} of optim.total_steps={o.total_steps}: nothing to train "
              f"(raise optim.total_steps or use another --run.out)")

    guard = DivergenceGuard(predictor.parameters())
    logger = MetricsLogger(out_dir)
    epoch_len = batches_per_epoch(train_set, cfg, dist)
    stream = batch_stream(train_set, cfg, dist, step)
    bar = tqdm(total=stop, initial=step, disable=not (progress and dist.is_main), desc="train_ac", unit="step")
    metrics: dict[str, Any] = {}
    last_eval = None
    t0 = time.perf_counter()
    while step < stop:
        # -- one optimisation step
        batch = next(stream)
        step += 1
        lr, wd = lr_sched.step(step), wd_sched.step(step)
        with _autocast(cfg, dist.device):
            h, actions, states = clip_latents(batch, encoder, cfg, dist.device)
            losses = model(h, actions, states)
        if not torch.isfinite(losses["loss"]):  # stop before the weights are touched; latest.pt stays good
            raise TrainingDiverged(f"step {step}: non-finite loss {losses['loss'].item()} "
                                   f"(tf {losses['tf_loss'].item()}, rollout {losses['rollout_loss'].item()})")
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(predictor.parameters(), o.clip_grad or math.inf)
        optimizer.step()
        guard.check(step)  # stops a diverged run here, before any checkpoint is written

        # -- evaluate, log, save
        evaluating = step % cfg.run.eval_every == 0 or step == stop
        if evaluating:
            last_eval = run_eval(predictor, val_set, cfg, dist, step, encoder)
        if step % cfg.run.log_every == 0 or evaluating:
            metrics = {k: all_reduce_mean(v.detach().float()).item() for k, v in losses.items()}
            # wall seconds since this invocation's first step (benchmarks/training_throughput.py reads it)
            metrics.update(lr=lr, wd=wd, grad_norm=scalar(grad_norm), time_s=time.perf_counter() - t0)
            logger.log(step, {**metrics, **(last_eval.summary() if evaluating and last_eval else {})})
            bar.set_postfix(loss=f"{metrics['loss']:.4f}", tf=f"{metrics['tf_loss']:.4f}",
                            roll=f"{metrics['rollout_loss']:.4f}")
        bar.update(1)
        if step % cfg.run.checkpoint_every == 0 or step == stop:
            guard.check_optimizer(optimizer, step)
            if sharded:  # resume state sharded; latest.pt the gathered weights (planning), without "opt"
                save_sharded(latest, predictor, optimizer, {"step": step}, dist)
                weights, opt = full_model_state(predictor), None
            else:
                weights, opt = predictor.state_dict(), optimizer.state_dict()
            if dist.is_main:
                atomic_save({"encoder": encoder.state_dict(), "predictor": weights, "opt": opt, "scaler": None,
                             "epoch": step // epoch_len, "step": step, "config": ckpt_config}, latest)
            barrier()
    bar.close()
    logger.close()
    return {"step": step, "metrics": metrics, "eval": last_eval}


def load_training_state(path: Path, predictor: nn.Module, optimizer: torch.optim.Optimizer, device) -> int:
    """Restore predictor and optimizer from an AC checkpoint; returns its step."""
    state = load_checkpoint(path, map_location=device, expected="an AC-training checkpoint",
                            required=("predictor", "step"))
    predictor.load_state_dict(state["predictor"])
    opt = state["opt"] if "opt" in state else state.get("optimizer")  # "optimizer": older files
    if opt is None:
        raise ValueError(f"{path}: no optimizer state (an FSDP run keeps it in {dcp_path(path)}): resume with "
                         "run.parallel=fsdp")
    optimizer.load_state_dict(opt)
    return int(state["step"])


def clip_latents(batch: dict, encoder: nn.Module, cfg: ACTrainingConfig, device) -> tuple:
    """A batch -> (latents ``[B, T, N, D]`` float, actions, states) on ``device``; encodes frames if needed."""
    actions = batch["actions"].to(device, torch.float32)
    states = batch["states"].to(device, torch.float32)
    if "latents" in batch:
        h = normalize_latents(batch["latents"].to(device, torch.float32), cfg.loss.normalize_reps)
    else:
        frames = batch["frames"]  # uint8 [B, T, H, W, 3]
        b, t = frames.shape[:2]
        h = encode(encoder, frames.flatten(0, 1), cfg.loss.normalize_reps, cfg.model.tubelet_size)
        h = h.view(b, t, *h.shape[1:])
    return h, actions, states


def run_eval(predictor, val_set, cfg: ACTrainingConfig, dist, step, encoder) -> ac_eval.HorizonErrors | None:
    """Evaluate on up to ``run.eval_clips`` held-out clips spread evenly over ``val_set``; rank 0 writes the
    table and plot to ``run.out/eval``."""
    if val_set is None or len(val_set) == 0:
        return None
    n, batch = len(val_set), cfg.data.batch_size
    picks = sorted({int(i) for i in np.linspace(0, n - 1, min(n, cfg.run.eval_clips))})[dist.rank::dist.world_size]
    groups = [picks[s:s + batch] for s in range(0, len(picks), batch)]
    clips = (clip_latents(_stack([val_set[i] for i in g]), encoder, cfg, dist.device) for g in groups)
    predictor.eval()
    errors = evaluate(predictor, clips, cfg.loss.normalize_reps, cfg.data.frames_per_clip - 1)
    predictor.train()
    if dist.is_main:
        ac_eval.write_report(errors, Path(cfg.run.out) / "eval", step)
    return errors


# ----------------------------------------------------------------------------------------------------------
# end to end: data source -> (feature store) -> datasets -> train


def run(cfg: ACTrainingConfig, progress: bool = True) -> dict[str, Any]:
    """What ``scripts/train_ac.py`` does: pick the encoder, prepare the data, then ``train``.

    ``data.path``: a feature store (``build_feature_cache``), or DROID-format episodes (root folder, index file,
    LeRobot dataset or droid_data clip cache). With ``data.feature_cache`` on, episodes are encoded once into
    ``run.out/features.zarr`` (reused later). Returns `train`'s result plus what a next stage needs: the
    ``checkpoint`` path, the ``feature_store`` and its ``split`` (``episodes``: the store's episode names in
    order; ``train`` / ``val``: their indices), both None when training read episodes directly.
    """
    from vjepa_ac import feature_cache as fc
    from vjepa_ac.config import save_yaml

    if cfg.data.path is None:
        raise ValueError("data.path: expected a data folder or file, got None")
    out_dir, data = Path(cfg.run.out), Path(cfg.data.path)
    out_dir.mkdir(parents=True, exist_ok=True)
    dist = init_distributed()
    cfg = resolve_encoder_checkpoint(cfg, data, dist)
    encoder_checkpoint = cfg.model.encoder_checkpoint
    encoder = load_frozen_encoder(cfg, encoder_checkpoint).to(dist.device)
    if dist.is_main:
        save_yaml(cfg, out_dir / "config.yaml")
    spec = resolve_encoder_spec(cfg, encoder_checkpoint)

    store = None
    if fc.is_feature_cache(data):
        store = data
    elif cfg.data.feature_cache:
        store = out_dir / "features.zarr"
        if dist.is_main and not store.exists():
            fc.build_feature_cache(data, store, encoder, cfg, spec, encoder_checkpoint, progress=progress)
        barrier()
    if store is not None:
        attrs = fc.check_store(store, fc.store_attrs(cfg, spec, encoder_checkpoint, *token_shape(encoder, cfg)))
        train_eps, val_eps = fc.split_episodes(len(attrs["episodes"]), cfg.data.val_fraction)
        train_set = fc.FeatureClipDataset(store, cfg.data.frames_per_clip, cfg.data.fps, train_eps)
        val_set = fc.FeatureClipDataset(store, cfg.data.frames_per_clip, cfg.data.fps, val_eps) if val_eps else None
        counts = (len(train_eps), len(val_eps))
        split = {"episodes": [str(n) for n in attrs["episodes"]], "train": train_eps, "val": val_eps}
    else:
        train_set, val_set, counts = fc.frame_datasets(data, cfg)
        split = None
    video_fps = fc.source_video_fps(store if store is not None else data)
    data_info = {"video_fps": video_fps, "frame_step": clip_stride(video_fps, cfg.data.fps)}
    if dist.is_main:
        print(f"data: {len(train_set)} training clips from {counts[0]} episodes, "
              f"{0 if val_set is None else len(val_set)} held-out clips from {counts[1]} episodes")
    result = train(cfg, train_set, val_set, encoder=encoder, data_info=data_info,
                   encoder_checkpoint=encoder_checkpoint, progress=progress)
    if dist.is_main and result["eval"] is not None:
        print(f"held-out latent L1 at step {result['step']} (ratios < 1 beat copy-last-frame):")
        print(result["eval"].table())
    return {**result, "checkpoint": str(out_dir / "latest.pt"), "feature_store": None if store is None else str(store),
            "split": split}


def resolve_encoder_checkpoint(cfg: ACTrainingConfig, data: Path, dist: DistInfo) -> ACTrainingConfig:
    """The config with ``model.encoder_checkpoint`` set: as given; else the weights a feature store was made
    with; else a random encoder written once to ``run.out/random_encoder.pt`` (so feature stores, resumed runs
    and the planner all use exactly these weights)."""
    from vjepa_ac import feature_cache as fc

    model = cfg.model
    if model.encoder_checkpoint is None and fc.is_feature_cache(data):
        attrs = fc.store_info(data)  # the checkpoint must carry the weights that made the features
        if attrs["encoder_checkpoint"] is None or not Path(attrs["encoder_checkpoint"]).is_file():
            raise FileNotFoundError(f"{data}: the store was encoded with {attrs['encoder_checkpoint']!r}, which "
                                    "does not exist here; pass --model.encoder_checkpoint with those weights")
        model = replace(model, encoder_checkpoint=attrs["encoder_checkpoint"],
                        encoder_checkpoint_key=attrs["encoder_checkpoint_key"])
    elif model.encoder_checkpoint is None:
        path = Path(cfg.run.out) / "random_encoder.pt"
        model = replace(model, encoder_checkpoint=str(path), encoder_checkpoint_key="encoder")
        if dist.is_main and not path.exists():
            print(f"no encoder checkpoint: using a randomly initialised encoder, saved to {path}")
            torch.manual_seed(cfg.run.seed)
            atomic_save({"encoder": build_encoder(resolve_encoder_spec(cfg, None)).state_dict()}, path)
        barrier()
    return replace(cfg, model=replace(model, encoder_checkpoint=str(model.encoder_checkpoint)))
