"""torch Datasets of clips: over a zarr clip cache (fast) and over raw episodes (no conversion needed).

One item per episode, as the official DROID loader: item i is a clip cut at a random window of episode i (see
`droid_data.clips` for which frame, state and action go together). Items are dicts of tensors, so the default
collate batches them and ``torch.utils.data.DistributedSampler`` shards them like any map-style dataset:

    frames      uint8 [T, H, W, 3]      (output="uint8", default)
                float32 [3, T, H, W]    (output="float": /255, ImageNet mean/std normalised; the model input)
    states      [T / frameskip, 7]      float32 by default (``dtype``)
    actions     [T / frameskip - 1, 7]  pose_diffs(states), computed in float64 then cast
    extrinsics  [T / frameskip, 6]      NaN where the source has none
    indices     int64 [T]               frame indices within the episode
    episode     int64 []                position of the episode in ``dataset.episodes``

With ``camera_frame=True`` states (hence actions) are expressed in the frame of the item's camera at each step
(``to_camera_frame`` with its extrinsics), the official loader's ``camera_frame`` option.

Randomness: with ``seed=None`` windows come from numpy's generator seeded by torch's per-worker RNG (so
``torch.manual_seed`` makes a run reproducible, as DataLoader seeds its workers from it). With an int ``seed``
item i of epoch e is a pure function of (seed, e, i) — call ``set_epoch(e)`` each epoch, as with
DistributedSampler — so a resumed run sees exactly the same clips.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
import torch
import zarr
from tqdm import tqdm

from droid_data.cache import CACHE_FORMAT
from droid_data.clips import ClipSpec, clip_span, cut_clip, sample_clip_indices
from droid_data.episode import EpisodeError
from droid_data.sources import episode_name, list_episodes, load_episode
from droid_data.validate import Problem
from droid_data.video import center_crop_resize

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "CachedClipDataset", "RawClipDataset"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OUTPUTS = ("uint8", "float")
IN_MEMORY_BYTES = 256 * 2**20  # cached states/extrinsics smaller than this are read into RAM once per process
DEFAULT_SPEC = ClipSpec()  # 8 frames at 4 fps, states every frame (the released AC config)
log = logging.getLogger(__name__)


def normalize_frames(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [T, H, W, 3] -> float32 [3, T, H, W] with ImageNet mean/std (the model's input layout)."""
    x = frames.permute(3, 0, 1, 2).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1, 1)
    return x.sub_(mean).div_(std)


class _ClipDataset(torch.utils.data.Dataset):
    """Shared sampling and output formatting."""

    def __init__(self, spec: ClipSpec, output: str, seed: int | None, dtype: torch.dtype, camera_frame: bool):
        if output not in OUTPUTS:
            raise ValueError(f"output: expected one of {OUTPUTS}, got {output!r}")
        self.spec, self.output, self.seed, self.dtype = spec, output, seed, dtype
        self.camera_frame = camera_frame
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the clips of `epoch` (only matters with an int seed)."""
        self.epoch = int(epoch)

    def _rng(self, index: int) -> np.random.Generator:
        if self.seed is None:
            return np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
        return np.random.default_rng([self.seed, self.epoch, index])

    def _item(self, index: int, frames: np.ndarray, clip, camera: int) -> dict[str, torch.Tensor]:
        frames = torch.from_numpy(np.ascontiguousarray(frames))
        extrinsics = (
            clip.extrinsics if clip.extrinsics is not None else np.full((len(clip.states), 6), np.nan)
        )
        return {
            "frames": normalize_frames(frames) if self.output == "float" else frames,
            "states": torch.from_numpy(clip.states).to(self.dtype),
            "actions": torch.from_numpy(clip.actions).to(self.dtype),
            "extrinsics": torch.from_numpy(np.asarray(extrinsics, dtype=np.float64)).to(self.dtype),
            "indices": torch.from_numpy(clip.indices),
            "episode": torch.tensor(index, dtype=torch.int64),
            "camera": torch.tensor(camera, dtype=torch.int64),
        }


class CachedClipDataset(_ClipDataset):
    """Clips from a store written by ``python -m droid_data convert`` (droid_data.cache.convert).

    ``cameras``: names converted into the store (default: all); with several, each item draws one at random
    (the official loader's behaviour with several camera views); ``item["camera"]`` says which.
    Episodes shorter than one clip are left out and counted in ``too_short`` (logged).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        spec: ClipSpec = DEFAULT_SPEC,
        cameras: Sequence[str] | None = None,
        output: str = "uint8",
        seed: int | None = None,
        dtype: torch.dtype = torch.float32,
        camera_frame: bool = False,
    ):
        super().__init__(spec, output, seed, dtype, camera_frame)
        self.path = str(path)
        root = zarr.open_group(self.path, mode="r")
        attrs = dict(root.attrs)
        if attrs.get("format") != CACHE_FORMAT:
            raise ValueError(
                f"{self.path}: not a droid_data clip cache (format {attrs.get('format')!r}, expected {CACHE_FORMAT!r})"
            )
        available = list(attrs["cameras"])
        self.cameras = list(cameras) if cameras is not None else available
        unknown = [c for c in self.cameras if c not in available]
        if unknown:
            raise KeyError(f"{self.path}: camera {unknown[0]!r} not in the cache; it has {available}")
        starts, lengths = root["episode_starts"][:], root["episode_lengths"][:]
        fps = root["episode_fps"][:]
        spans = np.array([clip_span(spec, f) for f in fps], dtype=np.int64)
        usable = lengths >= spans
        self.too_short = int((~usable).sum())
        if self.too_short:
            log.warning("%s: %d episode(s) shorter than one clip left out", self.path, self.too_short)
        names = attrs["episodes"]
        self.episodes = [names[i] for i in np.flatnonzero(usable)]
        self._starts, self._lengths, self._fps = starts[usable], lengths[usable], fps[usable]
        self.size = tuple(attrs["size"])
        self._handles = None
        self._pid = None

    def __len__(self) -> int:
        return len(self.episodes)

    def _arrays(self) -> dict:
        """Per-process handles (DataLoader workers open their own); states and extrinsics are read into RAM
        once when they fit in IN_MEMORY_BYTES, else read per clip."""
        if self._handles is None or self._pid != os.getpid():
            root = zarr.open_group(self.path, mode="r")
            handles = {"states": root["states"]}
            for camera in self.cameras:
                handles[f"frames/{camera}"] = root[f"frames/{camera}"]
                handles[f"extrinsics/{camera}"] = root[f"extrinsics/{camera}"]
            for name, array in handles.items():
                if not name.startswith("frames/") and array.nbytes <= IN_MEMORY_BYTES:
                    handles[name] = array[:]
            self._handles, self._pid = handles, os.getpid()
        return self._handles

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_handles"] = None
        return state

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"{self.path}: item {index} out of range [0, {len(self)})")
        arrays = self._arrays()
        rng = self._rng(index)
        start, length = int(self._starts[index]), int(self._lengths[index])
        indices = sample_clip_indices(length, float(self._fps[index]), self.spec, rng)
        camera = int(rng.integers(len(self.cameras))) if len(self.cameras) > 1 else 0
        name = self.cameras[camera]
        first, last = start + int(indices[0]), start + int(indices[-1]) + 1
        # One contiguous read, then subsample: a few neighbouring chunks, no per-frame requests.
        frames = arrays[f"frames/{name}"][first:last][indices - indices[0]]
        clip = cut_clip(
            arrays["states"][first:last],
            indices - indices[0],
            self.spec,
            arrays[f"extrinsics/{name}"][first:last],
            camera_frame=self.camera_frame,
        )
        clip.indices = indices
        return self._item(index, frames, clip, camera)


class RawClipDataset(_ClipDataset):
    """Clips decoded straight from episodes (DROID root / index file / list of folders, or a LeRobot folder).

    Frames are center-cropped to ``crop_aspect`` and resized to ``size``. Episode states are read once at
    construction (with a progress bar); videos are decoded per item.

    Bad episodes: by default the first one raises EpisodeError naming file and reason. With ``skip_bad=True``
    episodes that fail to read at construction are left out, and an item whose video fails to decode is
    replaced by the next episode's clip (at most ``len(self)`` attempts); every skip is logged and listed in
    ``skipped`` (per process).
    """

    def __init__(
        self,
        source,
        spec: ClipSpec = DEFAULT_SPEC,
        cameras: Sequence[str] = ("left",),
        size: int | tuple[int, int] = 256,
        crop_aspect: float = 1.0,
        output: str = "uint8",
        seed: int | None = None,
        dtype: torch.dtype = torch.float32,
        skip_bad: bool = False,
        state_keys: Sequence[str] | None = None,
        progress: bool = True,
        camera_frame: bool = False,
    ):
        super().__init__(spec, output, seed, dtype, camera_frame)
        self.cameras, self.size, self.crop_aspect, self.skip_bad = list(cameras), size, crop_aspect, skip_bad
        self.skipped: list[Problem] = []
        self.too_short = 0
        self._episodes = []
        for ref in tqdm(
            list_episodes(source, state_keys=state_keys), desc="reading episodes", disable=not progress
        ):
            try:
                episode = load_episode(ref)
                for camera in self.cameras:
                    episode.serial(camera)
            except EpisodeError as error:
                self._skip(Problem.from_error(error))
                continue
            except KeyError as error:
                self._skip(
                    Problem(episode_name(ref), "missing_key", str(episode.metadata_path), str(error.args[0]))
                )
                continue
            if episode.num_frames < clip_span(spec, episode.fps):
                self.too_short += 1
                continue
            self._episodes.append(episode)
        if self.too_short:
            log.warning("%s: %d episode(s) shorter than one clip left out", source, self.too_short)
        self.episodes = [e.name for e in self._episodes]

    def _skip(self, problem: Problem):
        if not self.skip_bad:
            raise EpisodeError(
                problem.episode, problem.kind, problem.file, problem.reason + " (use skip_bad=True)"
            )
        log.warning("skipping bad episode: %s", problem)
        self.skipped.append(problem)

    def __len__(self) -> int:
        return len(self._episodes)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} out of range [0, {len(self)})")
        for attempt in range(len(self)):
            current = (index + attempt) % len(self)
            episode = self._episodes[current]
            rng = self._rng(current)
            indices = sample_clip_indices(episode.num_frames, episode.fps, self.spec, rng)
            camera = int(rng.integers(len(self.cameras))) if len(self.cameras) > 1 else 0
            try:
                frames = episode.load_frames(self.cameras[camera], indices)
            except EpisodeError as error:
                self._skip(Problem.from_error(error))
                continue
            try:
                extrinsics = episode.extrinsics(self.cameras[camera])
            except KeyError:
                extrinsics = None
            clip = cut_clip(episode.states, indices, self.spec, extrinsics, camera_frame=self.camera_frame)
            frames = center_crop_resize(frames, self.size, self.crop_aspect)
            return self._item(current, frames, clip, camera)
        raise RuntimeError(f"every one of the {len(self)} episodes failed to load; see the logged problems")
