"""V-JEPA 2 self-supervised pretraining and cooldown.

One step (``JEPATrainer.train_step``):
1. lr / wd schedules are set for the step;
2. target ``h = LN(target_encoder(clip))`` under no_grad (LN without affine if ``normalize_reps``);
3. for each mask pair i: ``z = encoder(clip, masks_enc[i])``,
   ``ẑ = predictor(z, masks_enc[i], masks_pred[i], mask_index=i)``;
4. loss = mean over pairs of ``regression_loss(ẑ, gather(h, masks_pred[i]))`` (+ optional VICReg
   variance/covariance of the context features);
5. backward, optional gradient clipping, AdamW step.
``update_ema(step)`` then moves the target encoder towards the encoder with the scheduled momentum.

Differences from the official trainer, on purpose:
- ``mask_index`` is the mask-generator index, so each generator trains its own mask token (the official
  code passes the clip-length group index, so only token 0 is ever trained);
- schedules are pure functions of the step and reach their end values (no ``ipe_scale`` stretch);
- masks and data are seeded by (seed, step, rank): resuming needs nothing but the step counter;
- bf16 runs without a GradScaler (it is only needed, and only enabled, for ``use_float16``).

Checkpoints carry the official keys (``encoder``, ``predictor``, ``target_encoder``, ``opt``, ``scaler``,
``epoch``, ``loss``, ``batch_size``, ``world_size``, ``lr``) with module keys prefixed ``module.backbone.``
exactly as the official trainer writes them, plus ``step`` and ``config``.
"""
from __future__ import annotations

import copy
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from vjepa_ac import distributed, runtime
from vjepa_ac.checkpoint import atomic_save, load_checkpoint, load_pretrained, remove_stale_temps
from vjepa_ac.config import load_config, save_yaml, to_dict
from vjepa_ac.feature_stats import FeatureStats, feature_stats, warn_if_collapsed
from vjepa_ac.losses import LOSS_KINDS, regression_loss, variance_covariance
from vjepa_ac.masks import MaskConfig, MultiBlockMask2D, MultiBlockMask3D, mask_generator
from vjepa_ac.optim import DivergenceGuard, build_adamw
from vjepa_ac.schedules import EMA_SCHEDULES, LR_SCHEDULES, LRScheduler, MomentumSchedule, WDScheduler
from vjepa_ac.video_data import DataConfig

PRESET_DIR = Path(__file__).parent / "configs"
OFFICIAL_PREFIX = "module.backbone."


@dataclass
class EncoderConfig:
    """The encoder architecture.

    name: a factory of ``vjepa_ac.models.vision_transformer`` (``vit_large``, ``vit_giant_xformers``, …),
    or ``custom`` to build ``VisionTransformer`` from ``embed_dim`` / ``depth`` / ``num_heads`` / ``mlp_ratio``.
    """

    name: str = "vit_large"
    patch_size: int = 16
    tubelet_size: int = 2
    use_rope: bool = True
    use_activation_checkpointing: bool = False
    embed_dim: int | None = None
    depth: int | None = None
    num_heads: int | None = None
    mlp_ratio: float = 4.0

    def __post_init__(self):
        if self.name == "custom" and None in (self.embed_dim, self.depth, self.num_heads):
            raise ValueError("model.name 'custom' needs embed_dim, depth and num_heads, got "
                             f"{(self.embed_dim, self.depth, self.num_heads)}")


@dataclass
class JEPATrainingConfig:
    """Everything a pretraining or cooldown run needs; presets live in ``vjepa_ac/configs/*.yaml``.

    Time is counted in epochs of ``steps_per_epoch`` optimiser steps (the official "ipe"), independent
    of the dataset size; the data stream simply continues across epochs.
    """

    # predictor
    predictor_embed_dim: int = 384
    predictor_depth: int = 12
    predictor_num_heads: int = 12
    num_mask_tokens: int = 10
    # optimisation
    lr: float = 1e-3
    start_lr: float = 2e-4
    final_lr: float = 1e-6
    lr_schedule: str | None = None  # None: "linear" when is_anneal else "cosine" (see schedules.LR_SCHEDULES)
    decay_fraction: float = 0.2  # 'wsd' only: fraction of post-warmup steps spent decaying
    warmup_epochs: int = 40
    epochs: int = 300
    steps_per_epoch: int = 300
    weight_decay: float = 0.04
    final_weight_decay: float = 0.4
    clip_grad: float | None = None
    batch_size: int = 64
    use_bfloat16: bool = True
    use_float16: bool = False
    ema_start: float = 0.99925
    ema_end: float = 0.99925
    ema_schedule: str = "linear"
    encoder_lr_scale: float = 1.0
    # loss
    loss: str = "lp"
    loss_exp: float = 1.0
    smooth_l1_beta: float = 1.0
    normalize_reps: bool = False
    vicreg_var_weight: float = 0.0
    vicreg_cov_weight: float = 0.0
    # cooldown / initialisation
    is_anneal: bool = False
    anneal_ckpt: str | None = None
    auto_steps: int = 0
    # model, masks, data
    model: EncoderConfig = field(default_factory=EncoderConfig)
    masks: list[MaskConfig] = field(default_factory=lambda: [
        MaskConfig(num_blocks=8, spatial_scale=(0.15, 0.15)), MaskConfig(num_blocks=2, spatial_scale=(0.7, 0.7))])
    data: DataConfig = field(default_factory=DataConfig)
    # run
    output_dir: str = "runs/pretrain"
    seed: int = 0
    device: str | None = None
    threads: int | None = None  # torch CPU threads (None: torch's default); see docs/pretraining.md
    log_every: int = 10
    stats_every: int = 10
    save_every_epochs: int = 50
    collapse_std: float = 0.01
    collapse_rank_fraction: float = 0.01
    resume: bool = True

    def __post_init__(self):
        def need(ok: bool, name: str, expected: str):
            if not ok:
                raise ValueError(f"{name}: expected {expected}, got {getattr(self, name)!r}")

        for name in ("predictor_embed_dim", "predictor_depth", "predictor_num_heads", "num_mask_tokens",
                     "epochs", "steps_per_epoch", "batch_size", "log_every", "stats_every", "save_every_epochs"):
            need(getattr(self, name) >= 1, name, ">= 1")
        need(self.predictor_embed_dim % self.predictor_num_heads == 0, "predictor_embed_dim",
             f"a multiple of predictor_num_heads={self.predictor_num_heads}")
        need(0 <= self.warmup_epochs <= self.epochs, "warmup_epochs", f"in [0, epochs={self.epochs}]")
        need(math.isfinite(self.lr) and self.lr > 0, "lr", "a finite learning rate > 0")
        for name in ("start_lr", "final_lr", "weight_decay", "final_weight_decay", "encoder_lr_scale"):
            need(math.isfinite(getattr(self, name)) and getattr(self, name) >= 0, name, "finite and >= 0")
        if self.lr_schedule is None:
            self.lr_schedule = "linear" if self.is_anneal else "cosine"
        need(self.lr_schedule in LR_SCHEDULES, "lr_schedule", f"one of {LR_SCHEDULES}")
        need(0.0 <= self.decay_fraction <= 1.0, "decay_fraction", "in [0, 1]")
        need(0.0 <= self.ema_start <= 1.0, "ema_start", "in [0, 1]")
        need(0.0 <= self.ema_end <= 1.0, "ema_end", "in [0, 1]")
        need(self.ema_schedule in EMA_SCHEDULES, "ema_schedule", f"one of {EMA_SCHEDULES}")
        need(self.loss in LOSS_KINDS, "loss", f"one of {LOSS_KINDS}")
        need(self.loss_exp > 0, "loss_exp", "> 0")
        need(self.clip_grad is None or (math.isfinite(self.clip_grad) and self.clip_grad > 0), "clip_grad",
             "None or finite and > 0")
        need(not (self.use_bfloat16 and self.use_float16), "use_float16", "False when use_bfloat16 is True")
        need(self.auto_steps == 0, "auto_steps",
             "0: autoregressive rollout steps belong to action-conditioned training (scripts/train_ac.py); "
             "mask pretraining has none")
        need(not self.is_anneal or self.anneal_ckpt is not None or self.resume, "anneal_ckpt",
             "a checkpoint path when is_anneal is True (or resume from output_dir)")
        need(self.threads is None or self.threads >= 1, "threads", "None or >= 1")
        need(len(self.masks) >= 1, "masks", "at least one mask generator")
        grid = self.data.crop_size % self.model.patch_size == 0
        need(grid, "data", f"crop_size ({self.data.crop_size}) divisible by model.patch_size "
                           f"({self.model.patch_size})")
        need(self.data.frames_per_clip % self.model.tubelet_size == 0, "data",
             f"frames_per_clip ({self.data.frames_per_clip}) divisible by model.tubelet_size "
             f"({self.model.tubelet_size})")

    # Names read by schedules.LRScheduler / WDScheduler.
    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def warmup_steps(self) -> int:
        return self.warmup_epochs * self.steps_per_epoch

    @property
    def image_mode(self) -> bool:
        return self.data.source == "images"


def load_pretrain_config(name_or_path: str | os.PathLike, overrides=()) -> JEPATrainingConfig:
    """A preset name (``tiny-pretrain``, ``vitl-pretrain-256px-16f``, …) or YAML path, plus overrides."""
    return load_config(JEPATrainingConfig, name_or_path, PRESET_DIR, overrides)


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------

def build_encoder(cfg: JEPATrainingConfig) -> nn.Module:
    """The encoder of a pretraining config (``vjepa_ac.runtime`` builds it from the config's plain dict)."""
    return runtime.build_encoder(runtime.encoder_spec_from_pretrain_config(to_dict(cfg)))


def build_predictor(cfg: JEPATrainingConfig, embed_dim: int) -> nn.Module:
    from vjepa_ac.models.predictor import vit_predictor

    return vit_predictor(
        embed_dim=embed_dim, predictor_embed_dim=cfg.predictor_embed_dim, depth=cfg.predictor_depth,
        num_heads=cfg.predictor_num_heads, img_size=cfg.data.crop_size, patch_size=cfg.model.patch_size,
        num_frames=cfg.data.frames_per_clip, tubelet_size=cfg.model.tubelet_size, use_mask_tokens=True,
        num_mask_tokens=cfg.num_mask_tokens, zero_init_mask_tokens=True, use_rope=cfg.model.use_rope,
        use_activation_checkpointing=cfg.model.use_activation_checkpointing)


def build_mask_sampler(cfg: JEPATrainingConfig):
    """3-D multi-block masks for clips; I-JEPA 2-D masks in image mode."""
    grid = cfg.data.crop_size // cfg.model.patch_size
    if cfg.image_mode:
        return MultiBlockMask2D(grid, grid)
    return MultiBlockMask3D(cfg.masks, cfg.data.frames_per_clip // cfg.model.tubelet_size, grid, grid)


# --------------------------------------------------------------------------------------------------
# EMA target encoder
# --------------------------------------------------------------------------------------------------

class EMAManager:
    """Keeps the target encoder: ``θ_tgt ← m·θ_tgt + (1−m)·θ`` with ``m = schedule(step)``.

    ``ema_schedule``: a ``MomentumSchedule``, or ``(start, end)`` / ``(start, end, kind)`` with kind
    'linear' (default) or 'cosine', spread over ``total_steps``. The target is a deep copy of the encoder
    at construction, frozen (``requires_grad=False``); buffers are copied, not averaged.
    """

    def __init__(self, encoder: nn.Module, ema_schedule, total_steps: int):
        if isinstance(ema_schedule, MomentumSchedule):
            self.schedule = ema_schedule
        else:
            self.schedule = MomentumSchedule(*tuple(ema_schedule)[:2], total_steps=total_steps,
                                             kind=tuple(ema_schedule)[2] if len(ema_schedule) > 2 else "linear")
        self.encoder = encoder
        self.target = copy.deepcopy(encoder)
        self.target.requires_grad_(False)
        self.target.eval()

    def momentum(self, step: int) -> float:
        return self.schedule.value(step)

    @torch.no_grad()
    def update(self, step: int) -> float:
        m = self.momentum(step)
        tgt = list(self.target.parameters())
        src = [p.detach() for p in self.encoder.parameters()]
        if len(tgt) != len(src):
            raise RuntimeError(f"EMAManager: encoder has {len(src)} parameters, target {len(tgt)}")
        torch._foreach_mul_(tgt, m)
        torch._foreach_add_(tgt, src, alpha=1.0 - m)
        for bt, bs in zip(self.target.buffers(), self.encoder.buffers()):
            bt.copy_(bs)
        return m

    def get_target_encoder(self) -> nn.Module:
        return self.target


# --------------------------------------------------------------------------------------------------
# Trainer
# --------------------------------------------------------------------------------------------------

def _pairs(masks_enc: list, masks_pred: list) -> list[tuple[int, int]]:
    """(context index, target index) pairs: one-to-one, or one context shared by every target (I-JEPA)."""
    if len(masks_enc) == len(masks_pred):
        return [(i, i) for i in range(len(masks_enc))]
    if len(masks_enc) == 1:
        return [(0, j) for j in range(len(masks_pred))]
    raise ValueError(f"train_step: got {len(masks_enc)} context masks and {len(masks_pred)} target masks; "
                     "expected equal numbers, or one context mask for several targets")


class JEPAModel(nn.Module):
    """Encoder + predictor in one module, so one DDP wrapper sees one forward per step."""

    def __init__(self, encoder: nn.Module, predictor: nn.Module):
        super().__init__()
        self.encoder, self.predictor = encoder, predictor

    def forward(self, clips, masks_enc, masks_pred):
        contexts = [self.encoder(clips, masks=m) for m in masks_enc]
        preds = [self.predictor(contexts[i], masks_enc[i], masks_pred[j], mask_index=j)
                 for i, j in _pairs(masks_enc, masks_pred)]
        return preds, contexts


def _as_list(masks) -> list[torch.Tensor]:
    return list(masks) if isinstance(masks, (list, tuple)) else [masks]


def gather_tokens(h: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``h [B, N, D]`` at token indices ``idx [B, K]`` -> ``[B, K, D]``."""
    return torch.gather(h, 1, idx.unsqueeze(-1).expand(-1, -1, h.size(-1)))


class JEPATrainer:
    """Holds encoder, predictor, EMA target, optimizer, schedules and scaler; see the module docstring."""

    def __init__(self, encoder: nn.Module, predictor: nn.Module, config: JEPATrainingConfig,
                 device: str | torch.device | None = None):
        self.config = config
        self.device = torch.device(device) if device is not None else next(encoder.parameters()).device
        self.encoder = encoder.to(self.device)
        self.predictor = predictor.to(self.device)
        self.ema = EMAManager(self.encoder, (config.ema_start, config.ema_end, config.ema_schedule),
                              config.total_steps)
        self.model: nn.Module = JEPAModel(self.encoder, self.predictor)
        if distributed.get_world_size() > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            # Unused mask tokens make some predictor parameters gradient-free in every step.
            self.model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids,
                                                             find_unused_parameters=True)
        self.optimizer = build_adamw({"encoder": self.encoder, "predictor": self.predictor}, config.lr,
                                     config.weight_decay, lr_scales={"encoder": config.encoder_lr_scale})
        self.lr_scheduler = LRScheduler(self.optimizer, config)
        self.wd_scheduler = WDScheduler(self.optimizer, config)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.use_float16)
        self.guard = DivergenceGuard([*self.encoder.parameters(), *self.predictor.parameters()])
        self.global_step = 0
        self.last_metrics: dict[str, float] = {}
        self._loss_sum, self._loss_count = 0.0, 0

    # -- one optimisation step -------------------------------------------------------------------
    def _autocast(self):
        cfg = self.config
        if self.device.type == "cuda" and (cfg.use_bfloat16 or cfg.use_float16):
            return torch.autocast("cuda", dtype=torch.bfloat16 if cfg.use_bfloat16 else torch.float16)
        return nullcontext()  # float32 on CPU

    def target_features(self, clips: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), self._autocast():
            h = self.ema.get_target_encoder()(clips)
        return runtime.normalize_latents(h, self.config.normalize_reps)

    def train_step(self, batch, masks_enc, masks_pred) -> dict[str, float]:
        cfg = self.config
        clips = batch if isinstance(batch, torch.Tensor) else batch[0]
        if clips.dim() != 5:
            raise ValueError(f"train_step: batch must be clips [B, 3, T, H, W], got shape {tuple(clips.shape)}")
        clips = clips.to(self.device, non_blocking=True)
        masks_enc = [m.to(self.device, non_blocking=True) for m in _as_list(masks_enc)]
        masks_pred = [m.to(self.device, non_blocking=True) for m in _as_list(masks_pred)]
        step = self.global_step + 1  # 1-based, as the official schedulers see it
        lr = self.lr_scheduler.step(step)
        wd = self.wd_scheduler.step(step)

        self.model.train()
        h = self.target_features(clips)
        with self._autocast():
            preds, contexts = self.model(clips, masks_enc, masks_pred)
            pairs = _pairs(masks_enc, masks_pred)
            loss_jepa = sum(
                regression_loss(p.float(), gather_tokens(h, masks_pred[j]).float(), cfg.loss, cfg.loss_exp,
                                cfg.smooth_l1_beta)
                for p, (_, j) in zip(preds, pairs)) / len(pairs)
            loss = loss_jepa
            metrics = {}
            if cfg.vicreg_var_weight > 0 or cfg.vicreg_cov_weight > 0:
                var, cov = zip(*(variance_covariance(z) for z in contexts))
                var, cov = sum(var) / len(var), sum(cov) / len(cov)
                loss = loss + cfg.vicreg_var_weight * var + cfg.vicreg_cov_weight * cov
                metrics.update(vicreg_var=var.item(), vicreg_cov=cov.item())

        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad if cfg.clip_grad else math.inf)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.guard.check(step)  # a diverged step stops the run here, before any checkpoint is written
        self.global_step = step

        loss_value = distributed.all_reduce_mean(loss_jepa.detach()).item()
        self._loss_sum += loss_value
        self._loss_count += 1
        metrics.update(loss=loss_value, lr=lr, wd=wd, grad_norm=float(grad_norm))
        if step % cfg.stats_every == 0 or step == 1:
            metrics.update(feature_stats(h).as_dict("target"))
            metrics.update(feature_stats(torch.cat([z.detach().flatten(0, 1) for z in contexts])).as_dict("context"))
        return metrics

    def update_ema(self, step: int) -> float:
        """EMA update of the target encoder with the momentum of ``step`` (0-based); returns it."""
        return self.ema.update(step)

    # -- checkpoints -----------------------------------------------------------------------------
    def state(self, epoch: int) -> dict:
        def official(module):
            return {OFFICIAL_PREFIX + k: v for k, v in module.state_dict().items()}

        mean_loss = self._loss_sum / self._loss_count if self._loss_count else float("nan")
        return {
            "encoder": official(self.encoder),
            "predictor": official(self.predictor),
            "target_encoder": official(self.ema.get_target_encoder()),
            "opt": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "epoch": epoch,
            "loss": mean_loss,
            "batch_size": self.config.batch_size,
            "world_size": distributed.get_world_size(),
            "lr": self.config.lr,
            "step": self.global_step,
            "config": to_dict(self.config),
        }

    def save_checkpoint(self, path: str | os.PathLike, epoch: int) -> None:
        """Write the checkpoint atomically (rank 0 only); ``epoch`` = number of completed epochs."""
        DivergenceGuard.check_optimizer(self.optimizer, self.global_step)
        if distributed.is_main_process():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            atomic_save(self.state(epoch), path)
        distributed.barrier()

    def reset_loss_average(self) -> None:
        """Start a new average for the checkpoint's ``loss`` entry (called at each epoch start)."""
        self._loss_sum, self._loss_count = 0.0, 0

    def load_weights(self, ckpt: dict, source: str) -> None:
        """Load encoder, predictor and target encoder (strict; ``module.``/``backbone.`` prefixes removed).

        A file without ``target_encoder`` (some exported checkpoints) starts the target from ``encoder``.
        """
        target_key = "target_encoder"
        if target_key not in ckpt and "encoder" in ckpt:
            print(f"[pretrain] {source} has no 'target_encoder'; the target encoder starts as a copy of 'encoder'")
            target_key = "encoder"
        for key, module in (("encoder", self.encoder), ("predictor", self.predictor),
                            (target_key, self.ema.get_target_encoder())):
            try:
                load_pretrained(module, ckpt, key)
            except (KeyError, RuntimeError) as e:
                raise type(e)(f"{source}: {e}") from e
        self.guard.reset()

    def _load_optimizer(self, state: dict, source: str) -> None:
        """Load an optimizer state, keeping this run's group settings (``name``, ``lr_scale``,
        ``WD_exclude``): an official state has no ``lr_scale``, which would silently reset it to 1."""
        ours = [{k: g[k] for k in ("name", "lr_scale", "WD_exclude") if k in g} for g in self.optimizer.param_groups]
        try:
            self.optimizer.load_state_dict(state)
        except ValueError as e:
            raise ValueError(f"{source}: optimizer state does not fit this model's parameter groups: {e}") from e
        for group, meta in zip(self.optimizer.param_groups, ours):
            group.update(meta)

    def load_checkpoint(self, path: str | os.PathLike) -> int:
        """Restore everything for an exact resume; returns the stored epoch (completed epochs)."""
        ckpt = load_checkpoint(path, map_location=self.device, expected="a pretraining checkpoint")
        self.load_weights(ckpt, str(path))
        self._load_optimizer(ckpt["opt"], str(path))
        if ckpt.get("scaler") is not None:
            if not self.scaler.is_enabled():
                raise ValueError(f"{path}: checkpoint has a GradScaler state but use_float16 is False")
            self.scaler.load_state_dict(ckpt["scaler"])
        epoch = int(ckpt["epoch"])
        self.global_step = int(ckpt.get("step", epoch * self.config.steps_per_epoch))
        return epoch

    def start_from(self, path: str | os.PathLike) -> None:
        """Initialise a new run (cooldown / fine-tuning) from a checkpoint: weights, and optimizer
        state when the checkpoint has a compatible one; the step counter starts at 0."""
        ckpt = load_checkpoint(path, map_location=self.device, expected="a pretraining checkpoint")
        self.load_weights(ckpt, str(path))
        if ckpt.get("opt") is not None:
            self._load_optimizer(ckpt["opt"], str(path))
        else:
            print(f"[pretrain] {path} has no optimizer state; AdamW starts fresh")
        self.global_step = 0


# --------------------------------------------------------------------------------------------------
# The training loop
# --------------------------------------------------------------------------------------------------

def train(config: JEPATrainingConfig) -> JEPATrainer:
    """Plain training loop: resume or start (``anneal_ckpt``), then epochs of ``steps_per_epoch`` steps.

    Writes ``<output_dir>/latest.pt`` after every epoch, ``e{epoch}.pt`` every ``save_every_epochs``
    epochs, ``metrics.csv`` + TensorBoard scalars and ``config.yaml``. Returns the trainer; its
    ``last_metrics`` are the metrics of the final step.
    """
    from tqdm import tqdm

    from vjepa_ac.metrics_log import MetricsLogger
    from vjepa_ac.video_data import build_dataset, build_loader

    dist = distributed.init_distributed(config.device)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)  # identical initial weights on every rank
    out = Path(config.output_dir)
    if dist.is_main:
        remove_stale_temps(out)  # left by a crash during a checkpoint write
    encoder = build_encoder(config)
    predictor = build_predictor(config, encoder.embed_dim)
    trainer = JEPATrainer(encoder, predictor, config, dist.device)

    start_epoch = 0
    latest = out / "latest.pt"
    if config.resume and latest.exists():
        start_epoch = trainer.load_checkpoint(latest)
        print(f"[pretrain] resumed from {latest}: epoch {start_epoch}, step {trainer.global_step}")
    elif config.anneal_ckpt:
        trainer.start_from(config.anneal_ckpt)
        print(f"[pretrain] starting from {config.anneal_ckpt}")
    if dist.is_main:
        save_yaml(config, out / "config.yaml")

    dataset = build_dataset(config.data)
    loader = build_loader(dataset, config.batch_size, config.seed, dist.rank, dist.world_size,
                          trainer.global_step, config.data.num_workers)
    batches = iter(loader)
    sampler = build_mask_sampler(config)
    logger = MetricsLogger(out)
    bar = tqdm(total=config.total_steps, initial=trainer.global_step, disable=not dist.is_main,
               desc="pretrain", dynamic_ncols=True)
    t0 = time.perf_counter()
    for epoch in range(start_epoch, config.epochs):
        trainer.reset_loss_average()
        for _ in range(config.steps_per_epoch):
            step = trainer.global_step
            clips = next(batches)
            masks_enc, masks_pred = sampler(clips.shape[0], mask_generator(step, config.seed, dist.rank))
            metrics = trainer.train_step(clips, masks_enc, masks_pred)
            metrics["momentum"] = trainer.update_ema(step)
            metrics["epoch"] = epoch
            if not math.isfinite(metrics["loss"]):
                raise FloatingPointError(f"pretrain: loss is {metrics['loss']} at step {step + 1}; stopping "
                                         f"(last checkpoint: {latest})")
            if "target_std" in metrics and dist.is_main:
                for name in ("target", "context"):
                    stats = FeatureStats(metrics[f"{name}_std"], metrics[f"{name}_rank"], encoder.embed_dim)
                    warn_if_collapsed(stats, name, config.collapse_std, config.collapse_rank_fraction)
            if trainer.global_step % config.log_every == 0 or "target_std" in metrics:
                metrics["time_s"] = time.perf_counter() - t0
                logger.log(trainer.global_step, metrics)
            trainer.last_metrics = metrics
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['loss']:.4f}", lr=f"{metrics['lr']:.2e}", refresh=False)
        trainer.save_checkpoint(latest, epoch + 1)
        if (epoch + 1) % config.save_every_epochs == 0:
            trainer.save_checkpoint(out / f"e{epoch}.pt", epoch + 1)
    bar.close()
    logger.close()
    return trainer
