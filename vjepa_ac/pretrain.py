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

With ``model.app: vjepa_2_1`` (V-JEPA 2.1, ``app/vjepa_2_1/train.py``) the encoder is a ``VisionTransformer21``
whose last ``levels_predictor`` hierarchical layers are all supervised (targets layer-normed level by level),
the predictor (``VisionTransformerPredictor21``) fuses those levels and also predicts the context tokens, and
the loss adds ``lambda(step)`` x a dense L1 loss on the context tokens, each weighted by 1/sqrt(distance to the
nearest masked token) with ``weight_distance_loss`` (``JEPATrainer.objective_2_1``).

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
from vjepa_ac.config import ConfigError, finite_nonnegative, load_config, need, save_yaml, to_dict
from vjepa_ac.feature_stats import FeatureStats, feature_stats, warn_if_collapsed
from vjepa_ac.losses import (
    LOSS_KINDS,
    context_distance_weights,
    layer_norm_levels,
    level_losses,
    regression_loss,
    variance_covariance,
)
from vjepa_ac.masks import MaskConfig, MultiBlockMask2D, MultiBlockMask3D, mask_generator
from vjepa_ac.optim import DivergenceGuard, TrainingDiverged, build_adamw
from vjepa_ac.schedules import (
    EMA_SCHEDULES,
    LR_SCHEDULES,
    LinearWarmupHold,
    LRScheduler,
    MomentumSchedule,
    WDScheduler,
)
from vjepa_ac.sharding import (
    PARALLEL_MODES,
    dcp_path,
    full_model_state,
    load_sharded,
    local,
    save_sharded,
    scalar,
    shard,
)
from vjepa_ac.video_data import DataConfig

PRESET_DIR = Path(__file__).parent / "configs"
APPS = ("vjepa", "vjepa_2_1")  # the official app names: V-JEPA 2 and V-JEPA 2.1
OFFICIAL_PREFIX = "module.backbone."


@dataclass
class PretrainModelConfig:
    """Encoder and predictor architecture."""

    # encoder: a factory of vjepa_ac.models (vit_large, vit_giant_xformers, ...) or custom (embed_dim / depth /
    # num_heads / mlp_ratio below)
    name: str = "vit_large"
    patch_size: int = 16  # encoder patch size
    tubelet_size: int = 2  # frames per tubelet
    use_rope: bool = True  # 3-D rotary position embeddings (every released V-JEPA 2 model)
    use_activation_checkpointing: bool = False  # recompute activations in backward (less memory)
    embed_dim: int | None = None  # custom encoder width
    depth: int | None = None  # custom encoder blocks
    num_heads: int | None = None  # custom encoder heads
    mlp_ratio: float = 4.0  # custom encoder MLP width / embed_dim
    predictor_embed_dim: int = 384  # predictor width
    predictor_depth: int = 12  # predictor blocks
    predictor_num_heads: int = 12  # predictor heads
    num_mask_tokens: int = 10  # learned mask tokens (one per mask generator is used)
    # vjepa (V-JEPA 2) or vjepa_2_1: the V-JEPA 2.1 encoder (VisionTransformer21), predictor
    # (VisionTransformerPredictor21) and objective (loss.predict_all / lambda_value_* / weight_distance_loss)
    app: str = "vjepa"
    # 2.1: encoder depths supervised (deep self-supervision): the last levels_predictor of the four hierarchical
    # layers (the last block of each quarter of the depth), fused at the predictor input, all predicted
    levels_predictor: int = 4
    img_temporal_dim_size: int | None = None  # 2.1: clips of this many frames are images (own tokenizer); None: video only
    interpolate_rope: bool = False  # 2.1: RoPE rows/columns rescaled to the 256 px pretraining grid
    modality_embedding: bool = False  # 2.1: learned video / image modality token (with img_temporal_dim_size)

    def __post_init__(self):
        need(self.app in APPS, "model.app", f"one of {APPS}", self.app)
        need(1 <= self.levels_predictor <= 4, "model.levels_predictor", "1..4", self.levels_predictor)
        need(self.app == "vjepa_2_1" or self.levels_predictor == 4, "model.levels_predictor",
             "the default 4 unless app is vjepa_2_1", self.levels_predictor)
        need(self.app != "vjepa_2_1" or self.use_rope, "model.use_rope", "True for app vjepa_2_1", self.use_rope)
        need(self.name != "custom" or None not in (self.embed_dim, self.depth, self.num_heads), "model.name",
             "embed_dim, depth and num_heads set for 'custom'", (self.embed_dim, self.depth, self.num_heads))
        for name in ("predictor_embed_dim", "predictor_depth", "predictor_num_heads", "num_mask_tokens"):
            need(getattr(self, name) >= 1, f"model.{name}", ">= 1", getattr(self, name))
        need(self.predictor_embed_dim % self.predictor_num_heads == 0, "model.predictor_embed_dim",
             f"a multiple of predictor_num_heads={self.predictor_num_heads}", self.predictor_embed_dim)


@dataclass
class PretrainOptimConfig:
    """AdamW, the lr / wd / EMA schedules and the cooldown start.

    Time is counted in epochs of ``steps_per_epoch`` optimiser steps (the official "ipe"), independent of the
    dataset size; the data stream simply continues across epochs.
    """

    lr: float = 1e-3  # peak learning rate
    start_lr: float = 2e-4  # learning rate at step 0 (warmup start)
    final_lr: float = 1e-6  # learning rate at the last step
    lr_schedule: str | None = None  # cosine, wsd, linear or constant; None: linear when is_anneal else cosine
    decay_fraction: float = 0.2  # wsd only: fraction of post-warmup steps spent decaying
    warmup_epochs: int = 40  # linear warmup, epochs
    epochs: int = 300  # epochs of the run
    steps_per_epoch: int = 300  # optimiser steps per epoch (official ipe)
    weight_decay: float = 0.04  # AdamW weight decay at step 0
    final_weight_decay: float = 0.4  # weight decay at the last step (cosine in between)
    clip_grad: float | None = None  # max gradient norm (None: no clipping)
    ema_start: float = 0.99925  # target-encoder EMA momentum at step 0
    ema_end: float = 0.99925  # EMA momentum at the last step
    ema_schedule: str = "linear"  # linear or cosine
    encoder_lr_scale: float = 1.0  # encoder lr = lr x this
    is_anneal: bool = False  # cooldown: linear lr anneal (default schedule) from anneal_ckpt
    anneal_ckpt: str | None = None  # checkpoint a new run starts from (weights + optimizer state)

    def __post_init__(self):
        for name in ("epochs", "steps_per_epoch"):
            need(getattr(self, name) >= 1, f"optim.{name}", ">= 1", getattr(self, name))
        need(0 <= self.warmup_epochs <= self.epochs, "optim.warmup_epochs", f"in [0, epochs={self.epochs}]",
             self.warmup_epochs)
        need(math.isfinite(self.lr) and self.lr > 0, "optim.lr", "a finite learning rate > 0", self.lr)
        for name in ("start_lr", "final_lr", "weight_decay", "final_weight_decay", "encoder_lr_scale"):
            need(finite_nonnegative(getattr(self, name)), f"optim.{name}", "finite and >= 0", getattr(self, name))
        if self.lr_schedule is None:
            self.lr_schedule = "linear" if self.is_anneal else "cosine"
        need(self.lr_schedule in LR_SCHEDULES, "optim.lr_schedule", f"one of {LR_SCHEDULES}", self.lr_schedule)
        need(0.0 <= self.decay_fraction <= 1.0, "optim.decay_fraction", "in [0, 1]", self.decay_fraction)
        need(self.clip_grad is None or (math.isfinite(self.clip_grad) and self.clip_grad > 0), "optim.clip_grad",
             "None or finite and > 0", self.clip_grad)
        for name in ("ema_start", "ema_end"):
            need(0.0 <= getattr(self, name) <= 1.0, f"optim.{name}", "in [0, 1]", getattr(self, name))
        need(self.ema_schedule in EMA_SCHEDULES, "optim.ema_schedule", f"one of {EMA_SCHEDULES}", self.ema_schedule)

    # Names read by schedules.LRScheduler / WDScheduler.
    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def warmup_steps(self) -> int:
        return self.warmup_epochs * self.steps_per_epoch


@dataclass
class PretrainLossConfig:
    """The masked-prediction objective: which tokens are predicted and how the distance is measured."""

    loss: str = "lp"  # lp (|d|^p / p), l2 or smooth_l1 (vjepa_ac.losses)
    loss_exp: float = 1.0  # exponent p of lp (1: L1, as the official)
    smooth_l1_beta: float = 1.0  # smooth_l1 only: transition point
    normalize_reps: bool = False  # layer-norm the target features (the official configs: true)
    vicreg_var_weight: float = 0.0  # weight of a VICReg variance term on the context features (0: off)
    vicreg_cov_weight: float = 0.0  # weight of a VICReg covariance term (0: off)
    # 3-D multi-block mask generators (official: 8 blocks of 0.15 and 2 blocks of 0.7 of the frame area)
    masks: list[MaskConfig] = field(default_factory=lambda: [
        MaskConfig(num_blocks=8, spatial_scale=(0.15, 0.15)), MaskConfig(num_blocks=2, spatial_scale=(0.7, 0.7))])

    # V-JEPA 2.1 (model.app vjepa_2_1; official names and defaults). predict_all: also predict the context
    # tokens (the dense loss, weighted by lambda_value_vid / lambda_value_img)
    predict_all: bool = True
    weight_distance_loss: bool = False  # 2.1: weight each context token's error by 1/sqrt(distance to the nearest masked token)
    offset_context_loss: bool = False  # 2.1: measure that distance in units of a 16-token grid (needs a grid >= 16)
    lambda_value_vid: float = 0.0  # 2.1: context-loss weight for clips
    lambda_value_img: float = 0.0  # 2.1: context-loss weight in image mode (data.source images)
    lambda_progressive: bool = True  # 2.1: the weight is 0 until lambda_start_step, then ramps linearly to lambda_value
    lambda_start_step: int = 15_000  # 2.1: start of the ramp (0-based step; official, fixed: 15000)
    lambda_end_step: int = 30_000  # 2.1: end of the ramp (official, fixed: 30000)
    normalize_predictor: bool = False  # 2.1: layer-norm each level of the predictions before the loss

    def __post_init__(self):
        for name in ("lambda_value_vid", "lambda_value_img"):
            need(finite_nonnegative(getattr(self, name)), f"loss.{name}", "finite and >= 0", getattr(self, name))
        need(0 <= self.lambda_start_step < self.lambda_end_step, "loss.lambda_end_step",
             f"> lambda_start_step ({self.lambda_start_step}) >= 0", self.lambda_end_step)
        need(self.loss in LOSS_KINDS, "loss.loss", f"one of {LOSS_KINDS}", self.loss)
        need(self.loss_exp > 0, "loss.loss_exp", "> 0", self.loss_exp)
        need(len(self.masks) >= 1, "loss.masks", "at least one mask generator", self.masks)


@dataclass
class PretrainRunConfig:
    """Where the run writes, devices, logging and checkpoint cadence."""

    out: str = "runs/pretrain"  # run folder: latest.pt, e<N>.pt, metrics.csv, tb/, config.yaml
    seed: int = 0  # seed of weights, masks and data
    device: str | None = None  # cpu, cuda or cuda:N (None: cuda:LOCAL_RANK if available, else cpu)
    threads: int | None = None  # torch CPU threads (None: torch's default; 1 is fastest for tiny models on a busy machine)
    use_bfloat16: bool = True  # bf16 autocast on CUDA (the CPU runs float32)
    use_float16: bool = False  # fp16 autocast + GradScaler on CUDA instead
    log_every: int = 10  # steps between metric rows
    stats_every: int = 10  # steps between feature statistics (std, effective rank)
    save_every_epochs: int = 50  # epochs between e<N>.pt copies (latest.pt: every epoch)
    collapse_std: float = 0.01  # warn when a feature std falls below this
    collapse_rank_fraction: float = 0.01  # warn when the effective rank falls below this x D
    resume: bool = True  # continue from out/latest.pt when it exists
    # several processes: ddp (every rank holds all weights) or fsdp (FSDP2: encoder, predictor, target encoder,
    # gradients and AdamW state sharded over the ranks; resumes from the sharded latest.dcp/, the .pt files hold
    # the gathered weights without "opt")
    parallel: str = "ddp"

    def __post_init__(self):
        for name in ("log_every", "stats_every", "save_every_epochs"):
            need(getattr(self, name) >= 1, f"run.{name}", ">= 1", getattr(self, name))
        need(self.parallel in PARALLEL_MODES, "run.parallel", f"one of {PARALLEL_MODES}", self.parallel)
        need(self.threads is None or self.threads >= 1, "run.threads", "None or >= 1", self.threads)
        need(not (self.use_bfloat16 and self.use_float16), "run.use_float16", "False when use_bfloat16 is True",
             self.use_float16)


@dataclass
class JEPATrainingConfig:
    """A pretraining or cooldown run; presets live in ``vjepa_ac/configs/*.yaml``."""

    data: DataConfig = field(default_factory=DataConfig)
    model: PretrainModelConfig = field(default_factory=PretrainModelConfig)
    optim: PretrainOptimConfig = field(default_factory=PretrainOptimConfig)
    loss: PretrainLossConfig = field(default_factory=PretrainLossConfig)
    run: PretrainRunConfig = field(default_factory=PretrainRunConfig)

    def __post_init__(self):
        need(not self.optim.is_anneal or self.optim.anneal_ckpt is not None or self.run.resume, "optim.anneal_ckpt",
             "a checkpoint path when is_anneal is True (or run.resume from run.out)", self.optim.anneal_ckpt)
        need(self.data.crop_size % self.model.patch_size == 0, "data.crop_size",
             f"divisible by model.patch_size ({self.model.patch_size})", self.data.crop_size)
        need(self.data.frames_per_clip % self.model.tubelet_size == 0, "data.frames_per_clip",
             f"divisible by model.tubelet_size ({self.model.tubelet_size})", self.data.frames_per_clip)
        if self.is_2_1:  # the 2.1 objective is an L1-type regression onto layer-normed targets, as upstream
            need(self.loss.loss == "lp", "loss.loss", "lp for app vjepa_2_1", self.loss.loss)
            need(self.loss.normalize_reps, "loss.normalize_reps", "True for app vjepa_2_1 (2.1 targets are always "
                 "layer-normed)", self.loss.normalize_reps)
            need(not self.loss.offset_context_loss or self.grid_size >= 16, "loss.offset_context_loss",
                 f"False for a grid of {self.grid_size} tokens (< 16)", self.loss.offset_context_loss)

    @property
    def is_2_1(self) -> bool:
        return self.model.app == "vjepa_2_1"

    @property
    def grid_size(self) -> int:
        return self.data.crop_size // self.model.patch_size

    @property
    def image_mode(self) -> bool:
        return self.data.source == "images"


def load_pretrain_config(name_or_path: str | os.PathLike, overrides: dict | None = None) -> JEPATrainingConfig:
    """A preset name (``tiny-pretrain``, ``vitl-pretrain-256px-16f``, …), our YAML or an official vjepa2 YAML
    (``app.main --fname`` layout, see ``from_official_layout``), plus nested overrides."""
    return load_config(JEPATrainingConfig, name_or_path, PRESET_DIR, overrides, convert=from_official_layout)


OFFICIAL_SECTIONS = ("data", "data_aug", "loss", "mask", "meta", "model", "optimization")
_LAUNCHER_KEYS = ("app", "nodes", "tasks_per_node", "cpus_per_task", "mem_per_gpu")  # cluster settings, not ours
_IMAGE_RANKS = ("img_data", "img_mask")  # 2.1: a share of the GPUs trains on images; not implemented
# 2.1 settings this trainer only supports at their off value: key -> the value that means "off"
_OFF_2_1 = {"n_registers": 0, "n_registers_predictor": 0, "has_cls_first": False, "is_causal": False,
            "pred_is_causal": False, "vit_conv": False, "local_window": [-1, -1, -1],
            "pred_local_window": [-1, -1, -1]}
_LOSS_OFF_2_1 = {"shift_by_n": 0, "reg_coeff": 0.0, "computing_gram_loss": False}


def from_official_layout(data: dict, source: str = "<official config>") -> dict:
    """An official vjepa2 pretraining YAML (``python -m app.main --fname FILE``) -> this project's layout.

    Official files are recognised by their ``optimization`` and ``mask`` sections; anything else is returned
    unchanged. Every key is translated or refused: a setting this trainer does not implement (RandAugment,
    motion shift, random erasing, complement masks) is an error naming it, never silently dropped. Cluster
    keys (``nodes``, ``tasks_per_node``, ...) are ignored. Two documented differences: ``ipe_scale`` is not
    applied (our schedules reach their end values), and the official CSV dataset lists are not read: a
    single dataset that is a folder of videos is used, otherwise pass ``--data.path``. ``app: vjepa_2_1`` files
    translate to ``model.app: vjepa_2_1`` with their 2.1 keys (``lambda_*`` / ``normalize_predictor`` move from
    ``model`` to ``loss``); their image-rank sections (``img_data``, ``img_mask``) are refused.
    """
    if "optimization" not in data or "mask" not in data:
        return data

    def fail(key: str, expected: str, actual) -> None:
        raise ConfigError(f"{source}: {key}: expected {expected}, got {actual!r} (not supported by this trainer)")

    def take(section: dict, name: str, keys: dict) -> dict:
        out = {}
        for key, value in section.items():
            if key not in keys:
                fail(f"{name}.{key}", f"one of {sorted(keys)}", value)
            if keys[key] is not None:
                out[keys[key]] = value
        return out

    unknown = sorted(set(data) - set(OFFICIAL_SECTIONS) - set(_LAUNCHER_KEYS) - {"folder"})
    if unknown:
        hint = " (the image ranks of 2.1 runs; remove it to train on clips only)" if unknown[0] in _IMAGE_RANKS else ""
        fail(unknown[0], f"an official section {OFFICIAL_SECTIONS}{hint}", data[unknown[0]])
    app = data.get("app", "vjepa")
    if app not in APPS:
        fail("app", f"one of {APPS}", app)
    d = dict(data.get("data", {}))
    fpcs, datasets = d.pop("dataset_fpcs", [16]), d.pop("datasets", [])
    model = take({k: d.pop(k) for k in ("patch_size", "tubelet_size") if k in d}, "data",
                 {"patch_size": "patch_size", "tubelet_size": "tubelet_size"})
    ours_data = take(d, "data", {"batch_size": "batch_size", "crop_size": "crop_size", "fps": "fps",
                                 "num_workers": "num_workers", "dataset_type": None, "datasets_weights": None,
                                 "persistent_workers": None, "pin_mem": None})
    # Official dataset lists are CSV files of the official loader; a single folder of videos is read as it is.
    folder = datasets[0] if len(datasets) == 1 and Path(datasets[0]).is_dir() else None
    ours_data.update(source="videos", frames_per_clip=max(fpcs), horizontal_flip=True, path=folder)  # flip p 0.5
    aug = dict(data.get("data_aug", {}))
    for key, off in (("auto_augment", False), ("motion_shift", False), ("reprob", 0.0)):
        if aug.pop(key, off) not in (off, None):
            fail(f"data_aug.{key}", repr(off), data["data_aug"][key])
    ours_data.update(take(aug, "data_aug", {"random_resize_scale": "random_resized_crop",
                                            "random_resize_aspect_ratio": "aspect_ratio"}))
    masks = []
    for i, m in enumerate(data["mask"]):
        m = dict(m)
        if m.pop("full_complement", False) or m.pop("max_keep", None) is not None:
            fail(f"mask[{i}]", "full_complement false and max_keep null", data["mask"][i])
        masks.append(take(m, f"mask[{i}]", {k: k for k in ("num_blocks", "spatial_scale", "temporal_scale",
                                                             "aspect_ratio", "max_temporal_keep")}))
    m = dict(data.get("model", {}))
    for key in ("use_mask_tokens", "zero_init_mask_tokens"):
        if not m.pop(key, True):
            fail(f"model.{key}", "true", False)
    loss_2_1 = {}
    if app == "vjepa_2_1":
        for key, off in _OFF_2_1.items():
            if m.pop(key, off) not in (off, None):
                fail(f"model.{key}", repr(off), data["model"][key])
        model.update(app=app, **take({k: m.pop(k) for k in ("levels_predictor", "img_temporal_dim_size",
                                                             "interpolate_rope", "modality_embedding") if k in m},
                                     "model", {k: k for k in ("levels_predictor", "img_temporal_dim_size",
                                                              "interpolate_rope", "modality_embedding")}))
        loss_2_1 = {k: m.pop(k) for k in ("lambda_value_img", "lambda_value_vid", "lambda_progressive",
                                          "normalize_predictor") if k in m}
    model.update(take(m, "model", {"model_name": "name", "pred_depth": "predictor_depth",
                                   "pred_embed_dim": "predictor_embed_dim", "pred_num_heads": "predictor_num_heads",
                                   "use_rope": "use_rope", "use_activation_checkpointing": "use_activation_checkpointing",
                                   "uniform_power": None, "use_sdpa": None, "use_silu": None, "wide_silu": None}))
    model["num_mask_tokens"] = len(masks) * len(fpcs)  # as the official app sizes it
    o = dict(data["optimization"])
    ema = o.pop("ema", [0.99925, 0.99925])
    optim = take(o, "optimization", {"epochs": "epochs", "ipe": "steps_per_epoch", "warmup": "warmup_epochs",
                                     "lr": "lr", "start_lr": "start_lr", "final_lr": "final_lr",
                                     "weight_decay": "weight_decay", "final_weight_decay": "final_weight_decay",
                                     "is_anneal": "is_anneal", "anneal_ckpt": "anneal_ckpt", "ipe_scale": None,
                                     "resume_anneal": None, "clip_grad": "clip_grad"})
    optim.update(ema_start=ema[0], ema_end=ema[1])
    loss_section, loss_keys = dict(data.get("loss", {})), {"loss_exp": "loss_exp"}
    if app == "vjepa_2_1":
        for key, off in _LOSS_OFF_2_1.items():
            if loss_section.pop(key, off) not in (off, None):
                fail(f"loss.{key}", repr(off), data["loss"][key])
        for key in [k for k in loss_section if k.startswith("gram_")]:  # unused while computing_gram_loss is off
            loss_section.pop(key)
        loss_keys.update({k: k for k in ("predict_all", "weight_distance_loss", "offset_context_loss")})
    loss = {"loss": "lp", "normalize_reps": True, "masks": masks,  # official targets are always layer-normed
            **take(loss_section, "loss", loss_keys), **loss_2_1}
    meta = dict(data.get("meta", {}))
    dtype = meta.pop("dtype", "bfloat16")
    if dtype not in ("bfloat16", "float16", "float32"):
        fail("meta.dtype", "bfloat16, float16 or float32", dtype)
    run = take(meta, "meta", {"seed": "seed", "save_every_freq": "save_every_epochs", "load_checkpoint": "resume",
                              "eval_freq": None, "use_sdpa": None, "read_checkpoint": None})
    run.update(use_bfloat16=dtype == "bfloat16", use_float16=dtype == "float16")
    if "folder" in data:
        run["out"] = data["folder"]
    return {"data": ours_data, "model": model, "optim": optim, "loss": loss, "run": run}


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------

def build_encoder(cfg: JEPATrainingConfig) -> nn.Module:
    """The encoder of a pretraining config (``vjepa_ac.runtime`` builds it from the config's plain dict)."""
    return runtime.build_encoder(runtime.encoder_spec_from_pretrain_config(to_dict(cfg)))


def build_predictor(cfg: JEPATrainingConfig, embed_dim: int) -> nn.Module:
    """The V-JEPA 2 predictor, or with ``model.app: vjepa_2_1`` the 2.1 one (level fusion, context outputs)."""
    from vjepa_ac.models.predictor import vit_predictor, vit_predictor_2_1

    m = cfg.model
    options = {
        "embed_dim": embed_dim, "predictor_embed_dim": m.predictor_embed_dim, "depth": m.predictor_depth,
        "num_heads": m.predictor_num_heads, "img_size": cfg.data.crop_size, "patch_size": m.patch_size,
        "num_frames": cfg.data.frames_per_clip, "tubelet_size": m.tubelet_size, "use_mask_tokens": True,
        "num_mask_tokens": m.num_mask_tokens, "zero_init_mask_tokens": True, "use_rope": m.use_rope,
        "use_activation_checkpointing": m.use_activation_checkpointing}
    if not cfg.is_2_1:
        return vit_predictor(**options)
    return vit_predictor_2_1(**options, return_all_tokens=cfg.loss.predict_all, n_output_distillation=m.levels_predictor,
                             interpolate_rope=m.interpolate_rope, modality_embedding=m.modality_embedding,
                             img_temporal_dim_size=m.img_temporal_dim_size)


def build_mask_sampler(cfg: JEPATrainingConfig):
    """3-D multi-block masks for clips; I-JEPA 2-D masks in image mode."""
    grid = cfg.data.crop_size // cfg.model.patch_size
    if cfg.image_mode:
        return MultiBlockMask2D(grid, grid)
    return MultiBlockMask3D(cfg.loss.masks, cfg.data.frames_per_clip // cfg.model.tubelet_size, grid, grid)


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
        if hasattr(self.target, "reshard"):  # FSDP keeps a root's gathered weights after forward: drop them
            self.target.reshard()
        tgt = [local(p) for p in self.target.parameters()]  # FSDP: each rank updates its own shards
        src = [local(p).detach() for p in self.encoder.parameters()]
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
    """Encoder + predictor in one module, so one DDP wrapper sees one forward per step.

    ``deep`` (V-JEPA 2.1): the encoder returns its supervised depths concatenated (``training=True``) and the
    predictor returns ``(targets, context)`` pairs; ``img_frames``: clips of that many frames are images.
    """

    def __init__(self, encoder: nn.Module, predictor: nn.Module, deep: bool = False, img_frames: int | None = None):
        super().__init__()
        self.encoder, self.predictor = encoder, predictor
        self.deep, self.img_frames = deep, img_frames

    def forward(self, clips, masks_enc, masks_pred):
        if not self.deep:
            contexts = [self.encoder(clips, masks=m) for m in masks_enc]
            preds = [self.predictor(contexts[i], masks_enc[i], masks_pred[j], mask_index=j)
                     for i, j in _pairs(masks_enc, masks_pred)]
            return preds, contexts
        mod = "image" if clips.size(2) == self.img_frames else "video"
        contexts = [self.encoder(clips, masks=m, training=True) for m in masks_enc]
        preds = [self.predictor(contexts[i], masks_enc[i], masks_pred[j], mod=mod, mask_index=j)
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
        o = config.optim
        self.ema = EMAManager(self.encoder, (o.ema_start, o.ema_end, o.ema_schedule), o.total_steps)
        self.model: nn.Module = JEPAModel(self.encoder, self.predictor, deep=config.is_2_1,
                                          img_frames=config.model.img_temporal_dim_size)
        loss = config.loss
        self.context_lambda = LinearWarmupHold(loss.lambda_value_img if config.image_mode else loss.lambda_value_vid,
                                               loss.lambda_start_step, loss.lambda_end_step)
        self.sharded = distributed.get_world_size() > 1 and config.run.parallel == "fsdp"
        if self.sharded:
            info = distributed.init_distributed(str(self.device))
            shard(self.model, [*self.encoder.blocks, *self.predictor.predictor_blocks], info)
            shard(self.ema.target, self.ema.target.blocks, info)  # sharded like the encoder, so EMA is local
        elif distributed.get_world_size() > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            # Unused mask tokens make some predictor parameters gradient-free in every step.
            self.model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids,
                                                             find_unused_parameters=True)
        self.optimizer = build_adamw({"encoder": self.encoder, "predictor": self.predictor}, o.lr, o.weight_decay,
                                     lr_scales={"encoder": o.encoder_lr_scale})
        self.lr_scheduler = LRScheduler(self.optimizer, o)
        self.wd_scheduler = WDScheduler(self.optimizer, o)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.run.use_float16)
        self.guard = DivergenceGuard([*self.encoder.parameters(), *self.predictor.parameters()])
        self.global_step = 0
        self.last_metrics: dict[str, float] = {}
        self._loss_sum, self._loss_count = 0.0, 0

    # -- one optimisation step -------------------------------------------------------------------
    def _autocast(self):
        run = self.config.run
        if self.device.type == "cuda" and (run.use_bfloat16 or run.use_float16):
            return torch.autocast("cuda", dtype=torch.bfloat16 if run.use_bfloat16 else torch.float16)
        return nullcontext()  # float32 on CPU

    def target_features(self, clips: torch.Tensor) -> torch.Tensor:
        """Targets ``[B, N, D]``; with 2.1 every supervised depth, each layer-normed on its own ``[B, N, levels*D]``."""
        with torch.no_grad(), self._autocast():
            if self.config.is_2_1:
                h = self.ema.get_target_encoder()(clips, training=True)
                return layer_norm_levels(h.float(), self.config.model.levels_predictor)
            h = self.ema.get_target_encoder()(clips)
        return runtime.normalize_latents(h, self.config.loss.normalize_reps)

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
            if cfg.is_2_1:
                loss_jepa, metrics = self.objective_2_1(h, preds, pairs, masks_enc, masks_pred, self.global_step)
                contexts = [z[..., -self.encoder.embed_dim:] for z in contexts]  # the output level
            else:
                loss_jepa = sum(
                    regression_loss(p.float(), gather_tokens(h, masks_pred[j]).float(), cfg.loss.loss,
                                    cfg.loss.loss_exp, cfg.loss.smooth_l1_beta)
                    for p, (_, j) in zip(preds, pairs)) / len(pairs)
                metrics = {}
            loss = loss_jepa
            if cfg.loss.vicreg_var_weight > 0 or cfg.loss.vicreg_cov_weight > 0:
                var, cov = zip(*(variance_covariance(z) for z in contexts))
                var, cov = sum(var) / len(var), sum(cov) / len(cov)
                loss = loss + cfg.loss.vicreg_var_weight * var + cfg.loss.vicreg_cov_weight * cov
                metrics.update(vicreg_var=var.item(), vicreg_cov=cov.item())

        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.optim.clip_grad or math.inf)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.guard.check(step)  # a diverged step stops the run here, before any checkpoint is written
        self.global_step = step

        loss_value = distributed.all_reduce_mean(loss_jepa.detach()).item()
        self._loss_sum += loss_value
        self._loss_count += 1
        metrics.update(loss=loss_value, lr=lr, wd=wd, grad_norm=scalar(grad_norm))
        if step % cfg.run.stats_every == 0 or step == 1:
            metrics.update(feature_stats(h[..., -self.encoder.embed_dim:]).as_dict("target"))
            metrics.update(feature_stats(torch.cat([z.detach().flatten(0, 1) for z in contexts])).as_dict("context"))
        return metrics

    def objective_2_1(self, h, preds, pairs, masks_enc, masks_pred, step: int) -> tuple[torch.Tensor, dict]:
        """V-JEPA 2.1 loss (app/vjepa_2_1/train.py): the masked-token loss plus ``lambda(step)`` x the dense
        context loss, each the mean over mask pairs and supervised depths (one term per depth, logged as
        ``loss_pred_level<k>`` / ``loss_context_level<k>``, k = 0 the shallowest). With ``weight_distance_loss``
        a context token's error is divided by sqrt(its distance to the nearest masked token). ``step``: 0-based.
        """
        loss_cfg, levels = self.config.loss, self.config.model.levels_predictor
        pred_terms, context_terms = [], []
        for (z_pred, z_context), (i, j) in zip(preds, pairs):
            if loss_cfg.normalize_predictor:
                z_pred = layer_norm_levels(z_pred, levels)
                z_context = None if z_context is None else layer_norm_levels(z_context, levels)
            pred_terms.append(level_losses(z_pred.float(), gather_tokens(h, masks_pred[j]), levels,
                                           loss_cfg.loss_exp))
            if z_context is not None:
                weights = None
                if loss_cfg.weight_distance_loss:
                    weights = 1.0 / context_distance_weights(masks_pred[j], masks_enc[i], self.config.grid_size,
                                                             loss_cfg.offset_context_loss)
                context_terms.append(level_losses(z_context.float(), gather_tokens(h, masks_enc[i]), levels,
                                                  loss_cfg.loss_exp, weights))
        metrics = {}

        def mean_over_pairs(terms: list[list[torch.Tensor]], name: str) -> torch.Tensor:
            per_level = [sum(t[k] for t in terms) / len(terms) for k in range(levels)]
            metrics.update({f"{name}_level{k}": v.item() for k, v in enumerate(per_level)})
            total = sum(per_level) / levels
            metrics[name] = total.item()
            return total

        loss = mean_over_pairs(pred_terms, "loss_pred")
        if context_terms:
            lam = self.context_lambda.value(step) if loss_cfg.lambda_progressive else self.context_lambda.lambda_value
            loss = loss + lam * mean_over_pairs(context_terms, "loss_context")
            metrics["lambda_context"] = lam
        return loss, metrics

    def update_ema(self, step: int) -> float:
        """EMA update of the target encoder with the momentum of ``step`` (0-based); returns it."""
        return self.ema.update(step)

    # -- checkpoints -----------------------------------------------------------------------------
    def state(self, epoch: int) -> dict:
        """The checkpoint dict; under FSDP the gathered weights (every rank must call) and no optimizer state
        (that is in the sharded ``latest.dcp``)."""
        def official(module):
            weights = full_model_state(module) if self.sharded else module.state_dict()
            return {OFFICIAL_PREFIX + k: v for k, v in weights.items()}

        mean_loss = self._loss_sum / self._loss_count if self._loss_count else float("nan")
        return {
            "encoder": official(self.encoder),
            "predictor": official(self.predictor),
            "target_encoder": official(self.ema.get_target_encoder()),
            "opt": None if self.sharded else self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "epoch": epoch,
            "loss": mean_loss,
            "batch_size": self.config.data.batch_size,
            "world_size": distributed.get_world_size(),
            "lr": self.config.optim.lr,
            "step": self.global_step,
            "config": to_dict(self.config),
        }

    def save_checkpoint(self, path: str | os.PathLike, epoch: int) -> None:
        """Write the checkpoint atomically (rank 0 only); ``epoch`` = number of completed epochs."""
        DivergenceGuard.check_optimizer(self.optimizer, self.global_step)
        if distributed.is_main_process():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        distributed.barrier()
        if self.sharded and Path(path).name == "latest.pt":  # the resume state, sharded
            save_sharded(path, self.model, self.optimizer, {"step": self.global_step, "epoch": epoch},
                         distributed.init_distributed(str(self.device)), {"target_encoder": self.ema.target})
        state = self.state(epoch)
        if distributed.is_main_process():
            atomic_save(state, path)
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
        if self.sharded:
            if not dcp_path(path).is_dir():
                raise FileNotFoundError(f"{path}: run.parallel=fsdp resumes from the sharded {dcp_path(path)}, "
                                        "which is missing (resume with run.parallel=ddp, or use another run.out)")
            counters = load_sharded(path, self.model, self.optimizer, ["step", "epoch"],
                                    {"target_encoder": self.ema.target})
            self.guard.reset()
            self.global_step = counters["step"]
            return counters["epoch"]
        ckpt = load_checkpoint(path, map_location=self.device, expected="a pretraining checkpoint")
        if ckpt.get("opt") is None:
            raise ValueError(f"{path}: no optimizer state (an FSDP run keeps it in {dcp_path(path)}): resume with "
                             "run.parallel=fsdp")
        self.load_weights(ckpt, str(path))
        self._load_optimizer(ckpt["opt"], str(path))
        if ckpt.get("scaler") is not None:
            if not self.scaler.is_enabled():
                raise ValueError(f"{path}: checkpoint has a GradScaler state but use_float16 is False")
            self.scaler.load_state_dict(ckpt["scaler"])
        epoch = int(ckpt["epoch"])
        self.global_step = int(ckpt.get("step", epoch * self.config.optim.steps_per_epoch))
        return epoch

    def start_from(self, path: str | os.PathLike) -> None:
        """Initialise a new run (cooldown / fine-tuning) from a checkpoint: weights, and optimizer
        state when the checkpoint has a compatible one; the step counter starts at 0."""
        if self.sharded:  # load_weights copies whole tensors into the modules; sharded ones need DCP
            raise ValueError(f"optim.anneal_ckpt {path}: starting a run from a checkpoint is not supported with "
                             "run.parallel=fsdp; start the cooldown with run.parallel=ddp")
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
    """Plain training loop: resume or start (``optim.anneal_ckpt``), then epochs of ``steps_per_epoch`` steps.

    Writes ``<run.out>/latest.pt`` after every epoch, ``e{epoch}.pt`` every ``run.save_every_epochs``
    epochs, ``metrics.csv`` + TensorBoard scalars and ``config.yaml``. Returns the trainer; its
    ``last_metrics`` are the metrics of the final step.
    """
    from tqdm import tqdm

    from vjepa_ac.metrics_log import MetricsLogger
    from vjepa_ac.video_data import build_dataset, build_loader

    # -- setup: processes, models, trainer
    run, optim = config.run, config.optim
    dist = distributed.init_distributed(run.device)
    if run.threads is not None:
        torch.set_num_threads(run.threads)
    torch.manual_seed(run.seed)  # identical initial weights on every rank
    out, latest = Path(run.out), Path(run.out) / "latest.pt"
    if dist.is_main:
        remove_stale_temps(out)  # left by a crash during a checkpoint write
    encoder = build_encoder(config)
    trainer = JEPATrainer(encoder, build_predictor(config, encoder.embed_dim), config, dist.device)

    # -- resume, or start a cooldown from another run
    start_epoch = 0
    if run.resume and latest.exists():
        start_epoch = trainer.load_checkpoint(latest)
        print(f"[pretrain] resumed from {latest}: epoch {start_epoch}, step {trainer.global_step}")
    elif optim.anneal_ckpt:
        trainer.start_from(optim.anneal_ckpt)
        print(f"[pretrain] starting from {optim.anneal_ckpt}")
    if dist.is_main:
        save_yaml(config, out / "config.yaml")

    # -- data (a pure function of seed, step and rank) and masks
    batches = iter(build_loader(build_dataset(config.data), config.data.batch_size, run.seed, dist.rank,
                                dist.world_size, trainer.global_step, config.data.num_workers))
    sampler = build_mask_sampler(config)
    logger = MetricsLogger(out)
    bar = tqdm(total=optim.total_steps, initial=trainer.global_step, disable=not dist.is_main,
               desc="pretrain", dynamic_ncols=True)
    t0 = time.perf_counter()
    for epoch in range(start_epoch, optim.epochs):
        trainer.reset_loss_average()
        for _ in range(optim.steps_per_epoch):
            step = trainer.global_step
            clips = next(batches)
            masks_enc, masks_pred = sampler(clips.shape[0], mask_generator(step, run.seed, dist.rank))
            metrics = trainer.train_step(clips, masks_enc, masks_pred)  # stops a diverged step before any save
            metrics["momentum"] = trainer.update_ema(step)
            metrics["epoch"] = epoch
            if not math.isfinite(metrics["loss"]):
                raise TrainingDiverged(f"pretrain: loss is {metrics['loss']} at step {step + 1}; stopping "
                                       f"(last checkpoint: {latest})")
            if "target_std" in metrics and dist.is_main:
                for name in ("target", "context"):
                    stats = FeatureStats(metrics[f"{name}_std"], metrics[f"{name}_rank"], encoder.embed_dim)
                    warn_if_collapsed(stats, name, run.collapse_std, run.collapse_rank_fraction)
            if trainer.global_step % run.log_every == 0 or "target_std" in metrics:
                metrics["time_s"] = time.perf_counter() - t0
                logger.log(trainer.global_step, metrics)
            trainer.last_metrics = metrics
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['loss']:.4f}", lr=f"{metrics['lr']:.2e}", refresh=False)
        trainer.save_checkpoint(latest, epoch + 1)
        if (epoch + 1) % run.save_every_epochs == 0:
            trainer.save_checkpoint(out / f"e{epoch}.pt", epoch + 1)
    bar.close()
    logger.close()
    return trainer
