"""Encode DROID-format episodes once with the frozen encoder into a zarr store, and read clips from it.

The encoder is frozen during AC training, so its features of a frame never change: computing them once turns
every training step into a predictor-only step (the CPU default). Layout of a feature store (zarr v3)::

    features         [F, N, D]  cache_dtype   raw encoder output of every frame of every episode (no LayerNorm:
                                              normalize_reps is applied when reading, so one store serves both)
    states           [F, 7]     float64       [xyz, euler xyz, gripper] of each frame
    episode_starts   [E]        int64         first row of each episode in features / states
    episode_lengths  [E]        int64
    video_fps        [E]        float64       frame rate of each episode's video
    attrs            format, encoder (factory name + kwargs), encoder_checkpoint (+ key), img_size,
                     crop_aspect, camera, tubelet_size, tokens (N), dim (D), episodes (source folders)

Every frame (at the video rate) is stored, so clips can start at any frame, as the official loader samples.
A store is written to ``<path>.partial`` and renamed when complete; a store whose attributes disagree with the
training config is refused with the field, expected and actual value.

``FeatureClipDataset`` returns clips ``{"latents" [T, N, D] float32, "states" [T, 7], "actions" [T-1, 7]}``
with frames ``frame_step = ceil(video_fps / fps)`` apart and actions = ``pose_diffs`` of the clip's states
(exactly the official clip sampling). ``FrameClipDataset`` returns the same clips with uint8 ``frames``
``[T, H, W, 3]`` instead of latents, for on-the-fly encoding.
"""
from __future__ import annotations

import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from droid_data import find_episodes, pose_diffs, read_episode
from droid_data.video import center_crop_resize

FORMAT = "vjepa_ac.feature_cache.v1"
IN_MEMORY_BYTES = 2 * 2**30  # stores smaller than this are read into RAM once
_ZARR_DTYPES = {"float16": "float16", "float32": "float32", "bfloat16": "float32"}  # zarr has no bfloat16


def is_feature_cache(path: str | os.PathLike) -> bool:
    """True if ``path`` is a feature store written by ``build_feature_cache``."""
    path = Path(path)
    if not (path / "zarr.json").is_file():
        return False
    import zarr

    return zarr.open_group(str(path), mode="r").attrs.get("format") == FORMAT


def frame_step(video_fps: float, fps: float) -> int:
    """Frames between clip frames: ``ceil(video_fps / fps)`` (15 Hz video at 4 fps -> 4, as the official)."""
    return max(1, math.ceil(video_fps / fps - 1e-9))


def store_attrs(cfg, encoder_spec: dict, encoder_checkpoint: str | None, tokens: int, dim: int) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "encoder": encoder_spec,
        "encoder_checkpoint": None if encoder_checkpoint is None else str(encoder_checkpoint),
        "encoder_checkpoint_key": cfg.encoder_checkpoint_key,
        "img_size": cfg.img_size,
        "crop_aspect": cfg.crop_aspect,
        "camera": cfg.camera,
        "tubelet_size": cfg.tubelet_size,
        "tokens": tokens,
        "dim": dim,
    }


def build_feature_cache(episodes: str | os.PathLike | Sequence, out: str | os.PathLike, encoder: torch.nn.Module,
                        cfg, encoder_spec: dict, encoder_checkpoint: str | None = None,
                        progress: bool = True) -> Path:
    """Encode every frame of ``episodes`` (root folder, index file or list of folders) into a store at ``out``.

    ``cfg`` supplies img_size, crop_aspect, camera, tubelet_size, cache_dtype and encoder_checkpoint_key.
    A bad episode raises ``droid_data.EpisodeError`` naming its file (run ``python -m droid_data validate``).
    """
    import zarr
    from tqdm.auto import tqdm

    from vjepa_ac.ac_train import encode_images

    folders = find_episodes(episodes)
    if not folders:
        raise FileNotFoundError(f"{episodes}: no episodes found (expected folders holding trajectory.h5)")
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; refusing to overwrite a feature store")
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)  # left over from an interrupted build
    eps = [read_episode(f) for f in folders]
    lengths = np.array([e.num_frames for e in eps], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    total = int(lengths.sum())

    device = next(encoder.parameters()).device
    probe = torch.zeros(1, cfg.img_size, cfg.img_size, 3, dtype=torch.uint8, device=device)
    tokens, dim = encode_images(encoder, probe, normalize_reps=False, tubelet_size=cfg.tubelet_size).shape[1:]

    root = zarr.open_group(str(partial), mode="w")
    dtype = _ZARR_DTYPES[cfg.cache_dtype]
    rows_per_chunk = max(1, 2**20 // (tokens * dim * np.dtype(dtype).itemsize))
    features = root.create_array("features", shape=(total, tokens, dim), dtype=dtype,
                                 chunks=(rows_per_chunk, tokens, dim))
    states = root.create_array("states", shape=(total, 7), dtype="float64", chunks=(max(total, 1), 7))
    root.create_array("episode_starts", data=starts)
    root.create_array("episode_lengths", data=lengths)
    root.create_array("video_fps", data=np.array([e.fps for e in eps], dtype=np.float64))
    root.attrs.update({**store_attrs(cfg, encoder_spec, encoder_checkpoint, int(tokens), int(dim)),
                       "episodes": [str(f) for f in folders]})

    all_states = np.concatenate([e.states for e in eps])
    states[:] = all_states
    bar = tqdm(total=total, disable=not progress, desc="encoding frames", unit="frame")
    for ep, start in zip(eps, starts):
        for lo in range(0, ep.num_frames, rows_per_chunk):
            idx = np.arange(lo, min(lo + rows_per_chunk, ep.num_frames))
            frames = center_crop_resize(ep.load_frames(cfg.camera, idx), cfg.img_size, cfg.crop_aspect)
            h = encode_images(encoder, torch.from_numpy(frames), normalize_reps=False,
                              tubelet_size=cfg.tubelet_size)
            features[start + lo:start + lo + len(idx)] = h.cpu().numpy().astype(dtype)
            bar.update(len(idx))
    bar.close()
    os.replace(partial, out)
    return out


def check_store(path: str | os.PathLike, expected: dict[str, Any]) -> dict[str, Any]:
    """Open a feature store's attributes and compare them with ``expected`` (same keys as ``store_attrs``).

    Raises ValueError naming the store, the field, the expected and the actual value. Returns the attributes.
    """
    import zarr

    attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    if attrs.get("format") != FORMAT:
        raise ValueError(f"{path}: not a feature store (attrs.format expected {FORMAT!r}, got {attrs.get('format')!r})")
    for key, want in expected.items():
        if key in ("encoder_checkpoint",):
            continue  # the same weights may live at another path
        got = attrs.get(key)
        if _plain(got) != _plain(want):
            raise ValueError(f"{path}: attrs.{key} expected {want!r} (from the training config), got {got!r}; "
                             f"rebuild the feature store or fix the config")
    return attrs


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _clip_windows(lengths: np.ndarray, steps: np.ndarray, episodes: Sequence[int], frames_per_clip: int):
    """(episode, first frame) of every clip that fits: start + (T-1) * step < length."""
    windows = []
    for e in episodes:
        span = (frames_per_clip - 1) * int(steps[e])
        n = int(lengths[e]) - span
        windows.extend((e, s) for s in range(max(n, 0)))
    return np.array(windows, dtype=np.int64).reshape(-1, 2)


class FeatureClipDataset(torch.utils.data.Dataset):
    """Clips from a feature store: ``{"latents" [T, N, D], "states" [T, 7], "actions" [T-1, 7]}`` (float32).

    ``episodes`` selects episode indices of the store (e.g. a train / held-out split); every clip start of
    those episodes is one item, so the item list is deterministic.
    """

    def __init__(self, path: str | os.PathLike, frames_per_clip: int, fps: float,
                 episodes: Sequence[int] | None = None):
        import zarr

        self.path = Path(path)
        root = zarr.open_group(str(self.path), mode="r")
        if root.attrs.get("format") != FORMAT:
            raise ValueError(f"{self.path}: not a feature store (attrs.format is {root.attrs.get('format')!r})")
        self.starts = np.asarray(root["episode_starts"][:])
        self.lengths = np.asarray(root["episode_lengths"][:])
        self.steps = np.array([frame_step(f, fps) for f in np.asarray(root["video_fps"][:])], dtype=np.int64)
        self.frames_per_clip = frames_per_clip
        self.episodes = list(range(len(self.starts))) if episodes is None else list(episodes)
        self.windows = _clip_windows(self.lengths, self.steps, self.episodes, frames_per_clip)
        self._states = np.asarray(root["states"][:])
        feats = root["features"]
        nbytes = int(np.prod(feats.shape)) * feats.dtype.itemsize
        self._features = np.asarray(feats[:]) if nbytes <= IN_MEMORY_BYTES else None

    def __len__(self) -> int:
        return len(self.windows)

    def _rows(self, index: int) -> np.ndarray:
        e, s = self.windows[index]
        first = self.starts[e] + s
        return first + self.steps[e] * np.arange(self.frames_per_clip)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rows = self._rows(index)
        if self._features is not None:
            latents = self._features[rows]
        else:
            import zarr

            latents = zarr.open_group(str(self.path), mode="r")["features"][int(rows[0]):int(rows[-1]) + 1]
            latents = latents[rows - rows[0]]
        states = self._states[rows]
        return {"latents": torch.from_numpy(latents.astype(np.float32)),
                "states": torch.from_numpy(states.astype(np.float32)),
                "actions": torch.from_numpy(pose_diffs(states).astype(np.float32))}


class FrameClipDataset(torch.utils.data.Dataset):
    """The same clips as ``FeatureClipDataset`` read from raw episodes: uint8 ``frames`` ``[T, H, W, 3]``
    (center crop to ``crop_aspect``, resized to ``img_size``), ``states``, ``actions`` — for on-the-fly
    encoding (e.g. with augmentation)."""

    def __init__(self, episodes: str | os.PathLike | Sequence, frames_per_clip: int, fps: float, img_size: int,
                 camera: str, crop_aspect: float = 1.0, episode_subset: Sequence[int] | None = None):
        self.folders = find_episodes(episodes)
        self.eps = [read_episode(f) for f in self.folders]
        self.lengths = np.array([e.num_frames for e in self.eps], dtype=np.int64)
        self.steps = np.array([frame_step(e.fps, fps) for e in self.eps], dtype=np.int64)
        self.frames_per_clip, self.img_size, self.camera, self.crop_aspect = frames_per_clip, img_size, camera, crop_aspect
        chosen = range(len(self.eps)) if episode_subset is None else episode_subset
        self.windows = _clip_windows(self.lengths, self.steps, list(chosen), frames_per_clip)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        e, s = self.windows[index]
        ep = self.eps[e]
        idx = s + self.steps[e] * np.arange(self.frames_per_clip)
        frames = center_crop_resize(ep.load_frames(self.camera, idx), self.img_size, self.crop_aspect)
        states = ep.states[idx]
        return {"frames": torch.from_numpy(frames),
                "states": torch.from_numpy(states.astype(np.float32)),
                "actions": torch.from_numpy(pose_diffs(states).astype(np.float32))}


def split_episodes(num_episodes: int, val_fraction: float) -> tuple[list[int], list[int]]:
    """Deterministic split: the last ``max(1, round(val_fraction * E))`` episodes are held out (none if
    val_fraction is 0 or there is a single episode)."""
    n_val = 0 if val_fraction == 0 or num_episodes < 2 else max(1, round(val_fraction * num_episodes))
    n_val = min(n_val, num_episodes - 1)
    return list(range(num_episodes - n_val)), list(range(num_episodes - n_val, num_episodes))
