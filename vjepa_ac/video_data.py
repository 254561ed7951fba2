"""Pretraining data: clip datasets, the video transform and a resumable, rank-sharded sampler.

Every dataset returns one float clip ``[3, T, S, S]`` (ImageNet-normalised) per item. An item is either
an int index or an ``(index, seed)`` pair from ``StepSampler``; the seed drives every random choice
(clip window, crop), so the batches of step ``s`` are a pure function of ``(seed, s, rank)`` and a
resumed run sees exactly the data the uninterrupted run would have seen.

Sources (``DataConfig.source``):
- ``droid``: DROID raw-layout episodes (``droid_data.read_episode``), any of their cameras;
- ``droid_cache``: a zarr clip cache written by ``python -m droid_data convert`` (fast; frames already
  at the cache's resolution; one item per episode, a random cached camera per item);
- ``videos``: every video file below a folder (mp4, webm, mkv, avi, mov);
- ``images``: every image below a folder (png, jpg, jpeg, bmp, webp); an image becomes a clip of
  ``frames_per_clip`` identical frames (image mode; use ``frames_per_clip = tubelet_size``);
- ``synthetic``: procedurally generated moving squares (tests and smoke runs, no files needed).
A clip window shorter than ``frames_per_clip·frame_step`` is padded by repeating the last frame, as
the official loader does.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from vjepa_ac.runtime import imagenet_normalize

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
DATA_SOURCES = ("droid", "droid_cache", "videos", "images", "synthetic")


@dataclass
class DataConfig:
    """Where clips come from and how they are cut and augmented.

    source: one of ``DATA_SOURCES``; path: the folder (or, for ``droid``, a root / episode-list file).
    fps: target frame rate; each video's step is ``max(1, ceil(video_fps) // fps)`` as in the official
    loader (15 fps DROID at fps 4 → step 3). None: use ``frame_step`` for every video.
    crop_size: output side in pixels. random_resized_crop: (min, max) area fraction of the crop,
    aspect_ratio: its (min, max) width/height; (1, 1) and (1, 1) give a plain resize.
    horizontal_flip: off by default — flipping robot data mirrors the action space.
    cameras: camera roles or serials to use for ``droid`` (empty = every camera of each episode).
    """

    source: str = "synthetic"  # droid, droid_cache, videos, images or synthetic
    path: str | None = None  # data folder (droid: a root or an episode-list file)
    batch_size: int = 64  # clips per step and process
    frames_per_clip: int = 16  # frames per clip (official dataset_fpcs)
    fps: float | None = None  # target frame rate (None: use frame_step for every video)
    frame_step: int = 4  # frame step when fps is None
    crop_size: int = 256  # output side in pixels
    random_resized_crop: tuple[float, float] = (0.3, 1.0)  # (min, max) area fraction of the random crop
    aspect_ratio: tuple[float, float] = (0.75, 1.35)  # (min, max) width/height of the random crop
    horizontal_flip: bool = False  # flip with p 0.5 (off: flipping robot data mirrors the action space)
    cameras: list[str] | None = None  # droid: camera roles or serials (None: every camera)
    num_workers: int = 0  # DataLoader worker processes
    synthetic_size: int = 256  # synthetic: number of generated clips

    def __post_init__(self):
        if self.source not in DATA_SOURCES:
            raise ValueError(f"data.source: expected one of {DATA_SOURCES}, got {self.source!r}")
        if self.source != "synthetic" and not self.path:
            raise ValueError(f"data.path: source {self.source!r} needs a path, got {self.path!r}")
        for name in ("batch_size", "frames_per_clip", "frame_step", "crop_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"data.{name}: expected >= 1, got {getattr(self, name)}")
        lo, hi = self.random_resized_crop
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"data.random_resized_crop: expected 0 < min <= max <= 1, got {(lo, hi)}")
        lo, hi = self.aspect_ratio
        if not 0 < lo <= hi:
            raise ValueError(f"data.aspect_ratio: expected 0 < min <= max, got {(lo, hi)}")
        if self.fps is not None and self.fps <= 0:
            raise ValueError(f"data.fps: expected None or > 0, got {self.fps}")
        if self.num_workers < 0:
            raise ValueError(f"data.num_workers: expected >= 0, got {self.num_workers}")


class VideoTransform:
    """uint8 frames ``[T, H, W, 3]`` -> normalised float ``[3, T, S, S]``.

    Random resized crop (one crop for all frames: area fraction ``scale``, log-uniform aspect
    ``ratio``, up to 10 tries, then a centre crop of the allowed aspect), bilinear antialiased resize to
    ``crop_size``, optional horizontal flip, ImageNet normalisation.
    """

    def __init__(self, crop_size: int, scale=(0.3, 1.0), ratio=(0.75, 1.35), horizontal_flip: bool = False):
        self.crop_size, self.scale, self.ratio = crop_size, tuple(scale), tuple(ratio)
        self.horizontal_flip = horizontal_flip

    def crop_box(self, height: int, width: int, g: torch.Generator) -> tuple[int, int, int, int]:
        area = height * width
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        for _ in range(10):
            u = torch.rand(2, generator=g).tolist()
            target = area * (self.scale[0] + (self.scale[1] - self.scale[0]) * u[0])
            aspect = math.exp(log_lo + (log_hi - log_lo) * u[1])
            w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                top = int(torch.randint(height - h + 1, (), generator=g))
                left = int(torch.randint(width - w + 1, (), generator=g))
                return top, left, h, w
        aspect = min(max(width / height, self.ratio[0]), self.ratio[1])  # fallback: centre crop
        w, h = (width, min(height, round(width / aspect))) if width / height < aspect else \
            (min(width, round(height * aspect)), height)
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, frames, g: torch.Generator) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(frames))
        if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != torch.uint8:
            raise ValueError(f"VideoTransform: expected uint8 frames [T, H, W, 3], got {x.dtype} {tuple(x.shape)}")
        top, left, h, w = self.crop_box(x.shape[1], x.shape[2], g)
        x = x[:, top:top + h, left:left + w].permute(0, 3, 1, 2).float().div_(255.0)
        if (h, w) != (self.crop_size, self.crop_size):
            x = F.interpolate(x, size=(self.crop_size, self.crop_size), mode="bilinear", antialias=True,
                              align_corners=False)
        if self.horizontal_flip and torch.rand((), generator=g).item() < 0.5:
            x = x.flip(-1)
        x = x.permute(1, 0, 2, 3)  # [3, T, S, S]
        return imagenet_normalize(x, channel_dim=0)


def _split_item(item) -> tuple[int, torch.Generator]:
    g = torch.Generator()
    if isinstance(item, tuple):
        index, seed = item
        g.manual_seed(int(seed))
    else:
        index = item
        g.manual_seed(int(torch.randint(2**62, ())))
    return int(index), g


def clip_indices(num_frames: int, frames_per_clip: int, frame_step: int, g: torch.Generator) -> np.ndarray:
    """A random window of ``frames_per_clip`` frames ``frame_step`` apart; short videos repeat the last."""
    if num_frames < 1:
        raise ValueError(f"clip_indices: video has no frames (num_frames={num_frames})")
    span = (frames_per_clip - 1) * frame_step + 1
    start = int(torch.randint(max(1, num_frames - span + 1), (), generator=g))
    return np.minimum(start + np.arange(frames_per_clip) * frame_step, num_frames - 1)


def frame_step_for(video_fps: float, fps: float | None, frame_step: int) -> int:
    """The frame step of one video: from its fps when a target ``fps`` is set, else ``frame_step``."""
    if fps is None or not math.isfinite(video_fps):
        return frame_step
    return max(1, int(math.ceil(video_fps) // fps))


def _files(root: str | os.PathLike, extensions: tuple[str, ...], what: str) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data.path: {what} folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in extensions)
    if not files:
        raise FileNotFoundError(f"data.path: no {what} files ({', '.join(extensions)}) below {root}")
    return files


class VideoFolderDataset(Dataset):
    """Random clips from every video file below ``root``."""

    def __init__(self, root, frames_per_clip: int, frame_step: int, transform: VideoTransform,
                 fps: float | None = None):
        from droid_data.video import probe_video

        self.files = _files(root, VIDEO_EXTENSIONS, "video")
        infos = [probe_video(f, count_packets=False) for f in self.files]
        self.lengths = [i.num_frames for i in infos]
        self.steps = [frame_step_for(i.fps, fps, frame_step) for i in infos]
        self.frames_per_clip, self.transform = frames_per_clip, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, item) -> torch.Tensor:
        from droid_data.video import decode_frames

        index, g = _split_item(item)
        idx = clip_indices(self.lengths[index], self.frames_per_clip, self.steps[index], g)
        return self.transform(decode_frames(self.files[index], idx), g)


class ImageFolderDataset(Dataset):
    """Every image below ``root``, as a clip of ``num_frames`` identical frames."""

    def __init__(self, root, num_frames: int, transform: VideoTransform):
        self.files = _files(root, IMAGE_EXTENSIONS, "image")
        self.num_frames, self.transform = num_frames, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, item) -> torch.Tensor:
        from droid_data.video import decode_frames

        index, g = _split_item(item)
        image = decode_frames(self.files[index])[:1]
        return self.transform(np.repeat(image, self.num_frames, axis=0), g)


class DroidClipDataset(Dataset):
    """Random clips from DROID raw-layout episodes; one item per (episode, camera) pair."""

    def __init__(self, source, frames_per_clip: int, frame_step: int, transform: VideoTransform,
                 cameras: list[str] | None = None, fps: float | None = None):
        from droid_data import find_episodes, read_episode

        self.items: list[tuple[Path, str, int, int]] = []
        for folder in find_episodes(source):
            ep = read_episode(folder)
            step = frame_step_for(ep.fps, fps, frame_step)
            for cam in cameras or ep.cameras:
                self.items.append((Path(folder), ep.serial(cam), ep.num_frames, step))
        if not self.items:
            raise FileNotFoundError(f"data.path: no DROID episodes found in {source}")
        self.frames_per_clip, self.transform = frames_per_clip, transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, item) -> torch.Tensor:
        from droid_data import read_episode

        index, g = _split_item(item)
        folder, serial, length, step = self.items[index]
        idx = clip_indices(length, self.frames_per_clip, step, g)
        return self.transform(read_episode(folder).load_frames(serial, idx), g)


class DroidCacheClipDataset(Dataset):
    """Random clips from a ``droid_data`` zarr cache (``droid_data.dataset.CachedClipDataset``).

    The cache dataset draws its window from ``(seed, epoch, index)``; the per-item seed of
    ``StepSampler`` is passed as that "epoch", so a step's clips stay a pure function of the step.
    """

    def __init__(self, path, frames_per_clip: int, fps: float | None, transform: VideoTransform,
                 cameras: list[str] | None = None):
        from droid_data.clips import ClipSpec
        from droid_data.dataset import CachedClipDataset

        self.base = CachedClipDataset(path, ClipSpec(frames_per_clip=frames_per_clip, fps=fps), cameras=cameras,
                                      output="uint8", seed=0)
        if len(self.base) == 0:
            raise FileNotFoundError(f"data.path: the cache {path} has no episode long enough for "
                                    f"{frames_per_clip} frames at fps {fps}")
        self.transform = transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, item) -> torch.Tensor:
        index, g = _split_item(item)
        self.base.set_epoch(int(torch.randint(2**62, (), generator=g)))
        return self.transform(self.base[index]["frames"].numpy(), g)


class SyntheticVideoDataset(Dataset):
    """Coloured squares moving with constant velocity on a noisy background, generated per index."""

    def __init__(self, size: int, frames_per_clip: int, resolution: int, transform: VideoTransform):
        self.size, self.frames, self.resolution, self.transform = size, frames_per_clip, resolution, transform

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, item) -> torch.Tensor:
        index, g = _split_item(item)
        content = torch.Generator().manual_seed(index)  # the video itself depends only on the index
        r = self.resolution
        frames = (torch.rand(self.frames, r, r, 3, generator=content) * 40).to(torch.uint8)
        for _ in range(3):
            side = max(2, r // 5)
            pos = torch.rand(2, generator=content) * (r - side)
            vel = (torch.rand(2, generator=content) - 0.5) * r / max(1, self.frames)
            colour = (torch.rand(3, generator=content) * 200 + 55).to(torch.uint8)
            for t in range(self.frames):
                y, x = (pos + t * vel).clamp(0, r - side).long().tolist()
                frames[t, y:y + side, x:x + side] = colour
        return self.transform(frames.numpy(), g)


def build_dataset(cfg: DataConfig) -> Dataset:
    transform = VideoTransform(cfg.crop_size, cfg.random_resized_crop, cfg.aspect_ratio, cfg.horizontal_flip)
    if cfg.source == "droid":
        return DroidClipDataset(cfg.path, cfg.frames_per_clip, cfg.frame_step, transform, cfg.cameras, cfg.fps)
    if cfg.source == "droid_cache":
        return DroidCacheClipDataset(cfg.path, cfg.frames_per_clip, cfg.fps, transform, cfg.cameras)
    if cfg.source == "videos":
        return VideoFolderDataset(cfg.path, cfg.frames_per_clip, cfg.frame_step, transform, cfg.fps)
    if cfg.source == "images":
        return ImageFolderDataset(cfg.path, cfg.frames_per_clip, transform)
    return SyntheticVideoDataset(cfg.synthetic_size, cfg.frames_per_clip, max(cfg.crop_size, 32), transform)


class StepSampler(Sampler):
    """Infinite stream of ``(index, seed)`` items, sharded over ranks, resumable at any step.

    Pass ``p`` over the data is a permutation seeded by ``(seed, p)``; each rank takes every
    ``world_size``-th entry (the tail that does not divide evenly is dropped, so ranks stay in step).
    The stream starts at item ``start_step · batch_size`` of this rank, so step ``s`` always gets the
    same samples. ``seed`` of an item is unique per (pass, position), feeding the random crop and window.
    """

    def __init__(self, dataset_size: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 start_step: int = 0):
        self.per_rank = dataset_size // world_size
        if self.per_rank < 1:
            raise ValueError(f"StepSampler: dataset of {dataset_size} items cannot feed {world_size} ranks")
        self.n, self.seed, self.rank, self.world_size = dataset_size, seed, rank, world_size
        self.start = start_step * batch_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        position = self.start
        while True:
            p, offset = divmod(position, self.per_rank)
            perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + p))
            shard = perm[self.rank: self.per_rank * self.world_size: self.world_size].tolist()
            for i in range(offset, self.per_rank):
                yield shard[i], ((self.seed * 1_000_003 + p * 10_007 + self.rank) * 1_000_000 + i) % 2**62
            position = (p + 1) * self.per_rank


def build_loader(dataset: Dataset, batch_size: int, seed: int, rank: int, world_size: int, start_step: int,
                 num_workers: int = 0) -> DataLoader:
    sampler = StepSampler(len(dataset), batch_size, seed, rank, world_size, start_step)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, drop_last=True,
                      persistent_workers=num_workers > 0, pin_memory=torch.cuda.is_available())
