"""`VJEPAWorldModel`: the planning world model backed by a frozen encoder and an action-conditioned predictor.

It implements `planning.world_model.WorldModel` (a structural protocol, so no import of `planning` here):

    latents = wm.encode(images)                  # uint8 [B, H, W, 3] -> [B, N, D]
    preds = wm.rollout(latents, state, actions)  # [B, N, D], [B, 7], [S, H, 7] -> [S, H, N, D]

Frames are encoded exactly as in AC training (`vjepa_ac.ac_train.encode_images`: center crop to the training
aspect, resize, ImageNet normalisation, the frame repeated to a 2-frame tubelet, layer norm when the
checkpoint was trained with ``normalize_reps``). Rollouts are `vjepa_ac.ac_train.rollout`: the KV-cached
``forward_next`` of the predictor, one frame per step, with the states of steps > 0 integrated from the
actions by `droid_data.integrate_actions` in torch, vectorised over samples. On the CPU the samples are
rolled out in chunks of about ``chunk_tokens`` predictor tokens per frame (default 2048): activations then
stay in cache, which measured 5-15 % faster than one big batch; elsewhere all samples go in one batch.
Rollouts are differentiable with respect to the actions (the gradient planner needs it); the weights are
frozen. With ``amp_dtype`` (e.g. ``torch.bfloat16`` on CUDA) both run under autocast and return float32
latents.
"""
from __future__ import annotations

import contextlib
import os

import numpy as np
import torch
from torch import nn

from droid_data.video import center_crop_resize
from vjepa_ac.ac_train import encode_images, rollout
from vjepa_ac.formats import load_ac_model


class VJEPAWorldModel:
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
        ``arch_config`` (``vjepa_ac.formats.load_ac_model``, docs/checkpoints.md).

        Frames are cropped to the aspect the predictor was trained on unless `crop_aspect` overrides it.
        """
        encoder, predictor, info = load_ac_model(path, arch=arch, arch_config=arch_config, device=device)
        config = info.runtime
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
        frames = center_crop_resize(images, self.img_size, self.crop_aspect)
        with self._autocast():
            latents = encode_images(self.encoder, torch.from_numpy(frames).to(self.device), self.normalize_reps,
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
        latents = latents.to(device).expand(s, -1, -1)
        state = state.to(device=device, dtype=torch.float32).expand(s, -1)
        chunk = self._chunk_size(s, latents.shape[1])
        with self._autocast():
            preds = [rollout(self.predictor, latents[i:i + chunk], state[i:i + chunk], actions[i:i + chunk],
                             self.normalize_reps) for i in range(0, s, chunk)]
        return torch.cat(preds).float()

    def _chunk_size(self, samples: int, tokens_per_frame: int) -> int:
        """Samples per rollout chunk: ~chunk_tokens tokens per frame (CPU default 2048), at least one sample."""
        budget = self.chunk_tokens
        if budget is None:
            if self.device.type != "cpu":
                return samples
            budget = 2048
        per_sample = tokens_per_frame + self.predictor.cond_tokens  # action, state (, extrinsics) tokens
        return max(1, min(samples, budget // per_sample))


def _img_size(encoder: nn.Module) -> int:
    size = getattr(encoder, "img_size", None)
    if size is None:
        raise ValueError("VJEPAWorldModel: pass img_size (the encoder has no img_size attribute)")
    return int(size[0] if isinstance(size, (tuple, list)) else size)
