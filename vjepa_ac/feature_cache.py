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
with frames ``droid_data.clips.clip_stride(video_fps, fps) = ceil(video_fps / fps)`` apart and actions =
``pose_diffs`` of the clip's states (droid_data's clip convention). Every valid window is one item, so the
item list is deterministic. Without a feature store, ``frame_datasets`` builds droid_data's own clip
datasets (raw episodes or a ``droid_data`` clip cache) for on-the-fly encoding.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from droid_data import pose_diffs
from droid_data.cache import is_cache
from droid_data.clips import clip_stride
from droid_data.sources import list_episodes, load_episode
from droid_data.video import center_crop_resize
from vjepa_ac.runtime import encode

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


def store_attrs(cfg, encoder_spec: dict, encoder_checkpoint: str | None, tokens: int, dim: int) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "encoder": encoder_spec,
        "encoder_checkpoint": None if encoder_checkpoint is None else str(encoder_checkpoint),
        "encoder_checkpoint_key": cfg.model.encoder_checkpoint_key,
        "img_size": cfg.model.img_size,
        "crop_aspect": cfg.data.crop_aspect,
        "camera": cfg.data.camera,
        "tubelet_size": cfg.model.tubelet_size,
        "tokens": tokens,
        "dim": dim,
    }


def build_feature_cache(episodes, out: str | os.PathLike, encoder: torch.nn.Module, cfg, encoder_spec: dict,
                        encoder_checkpoint: str | None = None, progress: bool = True) -> Path:
    """Encode every frame of ``episodes`` into a feature store at ``out``.

    ``episodes``: a DROID raw root folder, an index file, a list of episode folders, a LeRobot dataset folder
    or a ``droid_data`` clip cache (``python -m droid_data convert``; its frames must be at ``cfg.model.img_size``).
    ``cfg`` (an ``ACTrainingConfig``) supplies image size, crop, camera, tubelet size, cache dtype and key.
    A bad episode raises ``droid_data.EpisodeError`` naming its file (run ``python -m droid_data validate``).
    """
    import zarr
    from tqdm.auto import tqdm

    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; refusing to overwrite a feature store")
    source = _FrameSource(episodes, cfg)
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)  # left over from an interrupted build
    lengths = np.asarray(source.lengths, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    total = int(lengths.sum())

    device = next(encoder.parameters()).device
    size = cfg.model.img_size
    probe = torch.zeros(1, size, size, 3, dtype=torch.uint8, device=device)
    tokens, dim = encode(encoder, probe, normalize_reps=False, tubelet_size=cfg.model.tubelet_size).shape[1:]

    root = zarr.open_group(str(partial), mode="w")
    dtype = _ZARR_DTYPES[cfg.data.cache_dtype]
    rows_per_chunk = max(1, 2**20 // (tokens * dim * np.dtype(dtype).itemsize))
    features = root.create_array("features", shape=(total, tokens, dim), dtype=dtype,
                                 chunks=(rows_per_chunk, tokens, dim))
    root.create_array("states", data=np.concatenate(source.states).astype(np.float64))
    root.create_array("episode_starts", data=starts)
    root.create_array("episode_lengths", data=lengths)
    root.create_array("video_fps", data=np.asarray(source.fps, dtype=np.float64))
    root.attrs.update({**store_attrs(cfg, encoder_spec, encoder_checkpoint, int(tokens), int(dim)),
                       "episodes": source.names})

    bar = tqdm(total=total, disable=not progress, desc="encoding frames", unit="frame")
    for e, start in enumerate(starts):
        for lo in range(0, int(lengths[e]), rows_per_chunk):
            idx = np.arange(lo, min(lo + rows_per_chunk, int(lengths[e])))
            h = encode(encoder, torch.from_numpy(source.frames(e, idx)), normalize_reps=False,
                              tubelet_size=cfg.model.tubelet_size)
            features[start + lo:start + lo + len(idx)] = h.cpu().numpy().astype(dtype)
            bar.update(len(idx))
    bar.close()
    os.replace(partial, out)
    return out


class _FrameSource:
    """Frames (uint8, at img_size) and states of each episode, from raw episodes or a droid_data cache."""

    def __init__(self, episodes, cfg):
        import zarr

        self.size, self.crop_aspect, self.camera = cfg.model.img_size, cfg.data.crop_aspect, cfg.data.camera
        if isinstance(episodes, (str, os.PathLike)) and is_cache(episodes):
            root = zarr.open_group(str(episodes), mode="r")
            key = f"frames/{self.camera}"
            if key not in root:
                raise KeyError(f"{episodes}: camera {self.camera!r} not in the droid_data cache; it has "
                               f"{list(root.attrs['cameras'])} (set data.camera)")
            size = tuple(root.attrs["size"])
            if size != (self.size, self.size):
                raise ValueError(f"{episodes}: droid_data cache frames are {size}, the config's img_size is "
                                 f"{self.size}; convert again with --size {self.size}")
            self._cache, self._frames = root, root[key]
            starts, self.lengths = root["episode_starts"][:], root["episode_lengths"][:]
            all_states = root["states"][:]
            self.states = [all_states[s:s + n] for s, n in zip(starts, self.lengths)]
            self._starts, self.fps = starts, list(root["episode_fps"][:])
            self.names = [str(n) for n in root.attrs["episodes"]]
            self._eps = None
        else:
            self._eps = [load_episode(ref) for ref in list_episodes(episodes)]
            if not self._eps:
                raise FileNotFoundError(f"{episodes}: no episodes found (expected folders holding trajectory.h5)")
            self.lengths = [e.num_frames for e in self._eps]
            self.states = [e.states for e in self._eps]
            self.fps = [e.fps for e in self._eps]
            self.names = [str(e.path) for e in self._eps]

    def frames(self, episode: int, idx: np.ndarray) -> np.ndarray:
        if self._eps is None:
            first = int(self._starts[episode])
            return np.asarray(self._frames[first + int(idx[0]):first + int(idx[-1]) + 1])
        raw = self._eps[episode].load_frames(self.camera, idx)
        return center_crop_resize(raw, self.size, self.crop_aspect)


def store_info(path: str | os.PathLike) -> dict[str, Any]:
    """The attributes of a feature store (see the module docstring)."""
    import zarr

    return dict(zarr.open_group(str(path), mode="r").attrs)


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
        self.steps = np.array([clip_stride(f, fps) for f in np.asarray(root["video_fps"][:])], dtype=np.int64)
        self.frames_per_clip = frames_per_clip
        self.episodes = list(range(len(self.starts))) if episodes is None else list(episodes)
        self.windows = _clip_windows(self.lengths, self.steps, self.episodes, frames_per_clip)
        self._states = np.asarray(root["states"][:])
        feats = root["features"]
        nbytes = int(np.prod(feats.shape)) * feats.dtype.itemsize
        self._features = np.asarray(feats[:]) if nbytes <= IN_MEMORY_BYTES else None
        self._handle = None  # large stores: a zarr handle per process (DataLoader workers open their own)
        self._pid = None

    def __len__(self) -> int:
        return len(self.windows)

    def __getstate__(self):
        return {**self.__dict__, "_handle": None}

    def _rows(self, index: int) -> np.ndarray:
        e, s = self.windows[index]
        first = self.starts[e] + s
        return first + self.steps[e] * np.arange(self.frames_per_clip)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rows = self._rows(index)
        if self._features is not None:
            latents = self._features[rows]
        else:
            if self._handle is None or self._pid != os.getpid():
                import zarr

                self._handle, self._pid = zarr.open_group(str(self.path), mode="r")["features"], os.getpid()
            # One contiguous read of the clip's span, then subsample.
            latents = self._handle[int(rows[0]):int(rows[-1]) + 1][rows - rows[0]]
        states = self._states[rows]
        return {"latents": torch.from_numpy(latents.astype(np.float32)),
                "states": torch.from_numpy(states.astype(np.float32)),
                "actions": torch.from_numpy(pose_diffs(states).astype(np.float32))}


def frame_datasets(data, cfg):
    """droid_data's clip datasets for on-the-fly encoding (uint8 ``frames``): ``(train, held_out, counts)``.

    Episodes are split with ``split_episodes(E, cfg.data.val_fraction)``. One item per episode with a random window
    that is a pure function of (seed, epoch, item), so resumed runs see the same clips (the training loop
    calls ``set_epoch``).
    """
    from droid_data.clips import ClipSpec
    from droid_data.dataset import CachedClipDataset, RawClipDataset

    d = cfg.data
    spec = ClipSpec(frames_per_clip=d.frames_per_clip, fps=d.fps)
    if is_cache(data):
        full = CachedClipDataset(data, spec, cameras=[d.camera], seed=cfg.run.seed)
    else:
        full = RawClipDataset(data, spec, cameras=[d.camera], size=cfg.model.img_size, crop_aspect=d.crop_aspect,
                              seed=cfg.run.seed)
    train_eps, val_eps = split_episodes(len(full), d.val_fraction)
    keep = ("frames", "states", "actions")
    train = _Select(torch.utils.data.Subset(full, train_eps), keep)
    val = _Select(torch.utils.data.Subset(full, val_eps), keep) if val_eps else None
    return train, val, (len(train_eps), len(val_eps))


def source_video_fps(data, sample: int = 16) -> float:
    """Median video rate of a data source (feature store, droid_data cache, or the first ``sample`` raw
    episodes); recorded in checkpoints next to the clip fps."""
    import zarr

    if is_feature_cache(data) or is_cache(data):
        root = zarr.open_group(str(data), mode="r")
        return float(np.median(root["video_fps" if "video_fps" in root else "episode_fps"][:]))
    refs = list_episodes(data)[:sample]
    return float(np.median([load_episode(r).fps for r in refs]))


class _Select(torch.utils.data.Dataset):
    """Keep only some keys of each item (the AC loop needs frames, states and actions)."""

    def __init__(self, dataset, keys):
        self.dataset, self.keys = dataset, keys

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        item = self.dataset[i]
        return {k: item[k] for k in self.keys}

    def set_epoch(self, epoch: int) -> None:
        self.dataset.dataset.set_epoch(epoch)


def split_episodes(num_episodes: int, val_fraction: float) -> tuple[list[int], list[int]]:
    """Deterministic split: the last ``max(1, round(val_fraction * E))`` episodes are held out (none if
    val_fraction is 0 or there is a single episode)."""
    n_val = 0 if val_fraction == 0 or num_episodes < 2 else max(1, round(val_fraction * num_episodes))
    n_val = min(n_val, num_episodes - 1)
    return list(range(num_episodes - n_val)), list(range(num_episodes - n_val, num_episodes))
