"""The model runtime: build, load and run V-JEPA 2 / 2-AC networks. Nothing here trains.

Trainers, the feature store, the state head, the linear probe, benchmarks and planning all run the models
through this module, so a frame is encoded and a latent is rolled out the same way everywhere:

    spec -> build_encoder / build_predictor       rebuild networks from the plain dicts stored in checkpoints
    uint8 images -> preprocess -> normalize_images -> encoder -> normalize_latents   (``encode``)
    latents, state, actions -> predictor.forward_next, one frame per step            (``rollout``)
    load_ac_checkpoint(path) -> (encoder, predictor, config);  VJEPAWorldModel.from_checkpoint(path)

Images are uint8 ``[..., H, W, 3]`` RGB at the boundary; the models take float ``[B, 3, T, H, W]`` normalised
with ImageNet mean / std. A single image is encoded as a clip of ``tubelet_size`` identical frames, as the
official V-JEPA 2-AC code does. With ``normalize_reps`` the latents are layer-normed (no affine), as the
official targets are.

``VJEPAWorldModel`` implements ``planning.world_model.WorldModel`` (a structural protocol, so this module
does not import ``planning``)::

    latents = wm.encode(images)                  # uint8 [B, H, W, 3] -> [B, N, D]
    preds = wm.rollout(latents, state, actions)  # [B, N, D], [B, 7], [S, H, 7] -> [S, H, N, D]

Frames are center-cropped to the aspect the predictor was trained on, resized, normalised and encoded;
rollouts use the KV-cached ``forward_next`` of the predictor with the states of steps > 0 integrated from the
actions by ``droid_data.integrate_actions`` in torch, vectorised over samples. On the CPU the samples are
rolled out in chunks of about ``chunk_tokens`` predictor tokens per frame (default 2048): activations then stay
in cache, which measured 5-15 % faster than one big batch; elsewhere all samples go in one batch. Rollouts are
differentiable with respect to the actions (the gradient planner needs it); the weights are frozen. With
``amp_dtype`` (e.g. ``torch.bfloat16`` on CUDA) both run under autocast and return float32 latents.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from droid_data.conventions import integrate_actions
from droid_data.video import center_crop_resize
from vjepa_ac.models.specs import build_encoder, build_predictor, encoder_spec_from_pretrain_config

__all__ = [  # networks from specs live in vjepa_ac.models.specs; the runtime is where users find them
    "IMAGENET_MEAN", "IMAGENET_STD", "VJEPAWorldModel", "build_encoder", "build_predictor", "encode",
    "encoder_spec_from_pretrain_config", "imagenet_normalize", "load_ac_checkpoint", "load_pretrain_encoder",
    "normalize_images", "normalize_latents", "preprocess", "rollout",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# ----------------------------------------------------------------------------------------------------------
# preprocessing (written once)


def preprocess(images: np.ndarray, img_size: int, crop_aspect: float = 1.0) -> np.ndarray:
    """uint8 ``[B, H, W, 3]`` -> uint8 ``[B, img_size, img_size, 3]``: center crop to ``crop_aspect`` (width /
    height), then an antialiased bilinear resize (``droid_data.video.center_crop_resize``)."""
    return center_crop_resize(images, img_size, crop_aspect)


def imagenet_normalize(x: torch.Tensor, channel_dim: int = -3) -> torch.Tensor:
    """Float pixels in [0, 1] with RGB at ``channel_dim`` -> ``(x - mean) / std`` with ImageNet statistics."""
    shape = [1] * x.dim()
    shape[channel_dim] = 3
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(shape)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(shape)
    return (x - mean) / std


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[..., H, W, 3]`` -> float ``[..., 3, H, W]``, ImageNet-normalised (the models' input)."""
    if images.dtype != torch.uint8 or images.shape[-1] != 3:
        raise ValueError(f"images: expected uint8 [..., H, W, 3], got {images.dtype} {tuple(images.shape)}")
    return imagenet_normalize(images.movedim(-1, -3).float().div_(255.0))


def normalize_latents(h: torch.Tensor, normalize_reps: bool) -> torch.Tensor:
    """Layer norm over the channel dimension without affine parameters (the official target normalisation)."""
    return F.layer_norm(h, h.shape[-1:]) if normalize_reps else h


@torch.no_grad()
def encode(encoder: nn.Module, images: torch.Tensor, normalize_reps: bool, tubelet_size: int = 2,
           chunk: int = 64) -> torch.Tensor:
    """uint8 images ``[B, H, W, 3]`` (already at the encoder's size) -> latents ``[B, N, D]`` float32.

    Each image is repeated to one tubelet. This is how every frame is encoded in AC training, in the feature
    store and in planning.
    """
    device = next(encoder.parameters()).device
    outs = []
    for start in range(0, images.shape[0], chunk):
        x = normalize_images(images[start:start + chunk].to(device))  # [b, 3, H, W]
        x = x.unsqueeze(2).expand(-1, -1, tubelet_size, -1, -1)  # [b, 3, tubelet, H, W]
        outs.append(encoder(x).float())
    return normalize_latents(torch.cat(outs), normalize_reps)


def rollout(predictor: nn.Module, h0: torch.Tensor, state0: torch.Tensor, actions: torch.Tensor,
            normalize_reps: bool) -> torch.Tensor:
    """Autoregressive prediction from one observed frame, exactly as planning does it.

    h0 ``[B, N, D]`` latents of frame 0, state0 ``[B, 7]`` its measured state, actions ``[B, H, 7]``
    -> predicted latents ``[B, H, N, D]`` of frames 1..H. Step k feeds back the latent predicted at step k-1
    (never a ground-truth or later frame) and the state integrated from state0 and actions 0..k-1.
    h0 and state0 may have batch 1, shared by the B action sequences (frame 0 is then embedded once).
    Uses the predictor's incremental (KV-cached) API; differentiable. Without autograd the keys/values are
    written into buffers preallocated for the H frames instead of concatenated at every step.
    """
    horizon = actions.shape[1]
    states = integrate_actions(state0.to(actions.dtype), actions)  # [B, H+1, 7]; row 0 = state0
    cache = predictor.new_cache(capacity=horizon)
    z, preds = h0, []
    for k in range(horizon):
        z = predictor.forward_next(z, actions[:, k], states[:, k], cache)
        z = normalize_latents(z, normalize_reps)
        preds.append(z)
    return torch.stack(preds, dim=1)


# ----------------------------------------------------------------------------------------------------------
# networks from checkpoints (specs -> networks: vjepa_ac.models.specs)


def load_ac_checkpoint(path: str | os.PathLike, map_location="cpu", *, arch: str | None = None,
                       arch_config: str | os.PathLike | None = None) -> tuple[nn.Module, nn.Module, dict]:
    """``(encoder, predictor, runtime config)`` of an AC checkpoint in eval mode: this project's (the ``config``
    entry: specs, ``normalize_reps``, ``img_size``, ``tubelet_size``, ``crop_aspect``, ...) or an official
    V-JEPA 2-AC file (architecture from ``arch`` / ``arch_config`` or the release; docs/checkpoints.md)."""
    from vjepa_ac.formats import load_ac_model

    encoder, predictor, info = load_ac_model(path, arch=arch, arch_config=arch_config, device=map_location)
    return encoder.requires_grad_(False), predictor, info.runtime


def load_pretrain_encoder(path: str | os.PathLike, key: str = "target_encoder",
                          map_location="cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the encoder of a ``scripts/pretrain.py`` checkpoint (architecture from its ``config``), load
    ``key`` (``target_encoder`` or ``encoder``) strictly; returns ``(encoder in eval mode, encoder spec)``."""
    from vjepa_ac.checkpoint import load_checkpoint, load_pretrained

    ckpt = load_checkpoint(path, map_location=map_location, required=("config", key),
                           expected="a checkpoint written by scripts/pretrain.py (official files carry no "
                                    "architecture: use vjepa_ac.checkpoint.load_pretrained)")
    spec = encoder_spec_from_pretrain_config(ckpt["config"])
    encoder = build_encoder(spec)
    load_pretrained(encoder, ckpt, key)
    return encoder.eval(), spec


# ----------------------------------------------------------------------------------------------------------
# the world model planning uses


class VJEPAWorldModel:
    """A frozen encoder and AC predictor behind the ``planning.world_model.WorldModel`` interface."""

    def __init__(self, encoder: nn.Module, predictor: nn.Module, *, normalize_reps: bool = True,
                 img_size: int | None = None, crop_aspect: float = 1.0, tubelet_size: int = 2,
                 amp_dtype: torch.dtype | None = None, chunk_tokens: int | None = None):
        self.encoder = encoder.eval().requires_grad_(False)
        self.predictor = predictor.eval().requires_grad_(False)
        self.normalize_reps = normalize_reps
        self.img_size = img_size if img_size is not None else _img_size(encoder)
        self.crop_aspect = crop_aspect
        self.tubelet_size = tubelet_size
        self.amp_dtype = amp_dtype
        if chunk_tokens is not None and chunk_tokens < 1:
            raise ValueError(f"VJEPAWorldModel: chunk_tokens must be >= 1 or None, got {chunk_tokens}")
        self.chunk_tokens = chunk_tokens

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device = "cpu",
                        crop_aspect: float | None = None, amp_dtype: torch.dtype | None = None, *,
                        arch: str | None = None, arch_config: str | os.PathLike | None = None) -> VJEPAWorldModel:
        """Load an AC checkpoint: this project's (keys ``encoder``, ``predictor``, ``config``; docs/ac_training.md)
        or an official V-JEPA 2-AC file, whose architecture is the released one or comes from ``arch`` /
        ``arch_config`` (``load_ac_checkpoint``, docs/checkpoints.md).

        Frames are cropped to the aspect the predictor was trained on unless `crop_aspect` overrides it.
        """
        encoder, predictor, config = load_ac_checkpoint(path, map_location=device, arch=arch, arch_config=arch_config)
        for key in ("normalize_reps", "img_size", "tubelet_size"):
            if key not in config:
                raise KeyError(f"{path}: checkpoint config lacks {key!r}; has {sorted(config)}")
        return cls(encoder.to(device), predictor.to(device), normalize_reps=bool(config["normalize_reps"]),
                   img_size=int(config["img_size"]), tubelet_size=int(config["tubelet_size"]),
                   crop_aspect=float(config.get("crop_aspect", 1.0) if crop_aspect is None else crop_aspect),
                   amp_dtype=amp_dtype)

    @property
    def device(self) -> torch.device:
        return next(self.predictor.parameters()).device

    def encode(self, images) -> torch.Tensor:
        """uint8 images [B, H, W, 3] (numpy or torch) -> latents [B, N, D] on the model's device."""
        images = images.cpu().numpy() if torch.is_tensor(images) else np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"VJEPAWorldModel.encode: images must be uint8 [B, H, W, 3], "
                             f"got {images.dtype} {images.shape}")
        frames = preprocess(images, self.img_size, self.crop_aspect)
        with self._autocast():
            latents = encode(self.encoder, torch.from_numpy(frames).to(self.device), self.normalize_reps,
                             self.tubelet_size)
        return latents.float()

    def rollout(self, latents: torch.Tensor, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Latents [B, N, D] and state [B, 7] of the current frame, actions [S, H, 7] -> predictions [S, H, N, D].

        A context with B = 1 is shared by all S action sequences.
        """
        if latents.dim() != 3 or state.dim() != 2 or state.shape[-1] != 7 or actions.dim() != 3 \
                or actions.shape[-1] != 7:
            raise ValueError(f"VJEPAWorldModel.rollout: expected latents [B, N, D], state [B, 7], actions "
                             f"[S, H, 7]; got {tuple(latents.shape)}, {tuple(state.shape)}, {tuple(actions.shape)}")
        b, s = latents.shape[0], actions.shape[0]
        if state.shape[0] != b or b not in (1, s):
            raise ValueError(f"VJEPAWorldModel.rollout: batch of latents ({b}) and state ({state.shape[0]}) must "
                             f"be 1 or the number of action sequences ({s})")
        device = self.device
        actions = actions.to(device=device, dtype=torch.float32)
        latents, state = latents.to(device), state.to(device=device, dtype=torch.float32)
        chunk = self._chunk_size(s, latents.shape[1])

        def part(x, i):  # a shared context (batch 1) stays batch 1: the predictor embeds it once per chunk
            return x if x.shape[0] == 1 else x[i:i + chunk]

        with self._autocast():
            preds = [rollout(self.predictor, part(latents, i), part(state, i), actions[i:i + chunk],
                             self.normalize_reps) for i in range(0, s, chunk)]
        return torch.cat(preds).float()

    def _chunk_size(self, samples: int, tokens_per_frame: int) -> int:
        """Samples per rollout chunk: ~chunk_tokens tokens per frame (CPU default 2048), at least one sample;
        the samples are split into equal chunks (400 as 4 x 100, not 3 x 113 + 61)."""
        budget = self.chunk_tokens
        if budget is None:
            if self.device.type != "cpu":
                return samples
            budget = 2048
        per_sample = tokens_per_frame + self.predictor.cond_tokens  # action, state (, extrinsics) tokens
        chunk = max(1, min(samples, budget // per_sample))
        return -(-samples // -(-samples // chunk))  # ceil(samples / number of chunks)


def _img_size(encoder: nn.Module) -> int:
    size = getattr(encoder, "img_size", None)
    if size is None:
        raise ValueError("VJEPAWorldModel: pass img_size (the encoder has no img_size attribute)")
    return int(size[0] if isinstance(size, (tuple, list)) else size)
