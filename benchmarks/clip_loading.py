"""Clips per second: decoding raw DROID-format episodes vs reading the zarr clip cache.

Writes synthetic episodes (textured moving frames, H.264, 15 fps) into a temporary folder, converts them with
`droid_data.convert`, then times `RawClipDataset` and `CachedClipDataset` item loading (single process, the
released clip spec: 8 frames at 4 fps) and prints a table.

    python benchmarks/clip_loading.py                       # DROID raw HD (720x1280) video, 256 px clips
    python benchmarks/clip_loading.py --height 180 --width 320 --size 64 --episodes 6 --length 120  # small
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
import time

import numpy as np
import torch

from droid_data import CachedClipDataset, ClipSpec, RawClipDataset, convert, write_episode
from droid_data.synthetic import random_states


def textured_frames(rng: np.random.Generator, length: int, height: int, width: int) -> np.ndarray:
    """A smooth random texture panning one pixel per frame: compresses like camera footage, not like noise."""
    coarse = rng.integers(0, 256, (height // 8 + 2, (width + length) // 8 + 2, 3)).astype(np.float32)
    texture = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)[:height]
    return np.stack([texture[:, t : t + width] for t in range(length)]).astype(np.uint8)


def time_items(dataset, count: int) -> float:
    """Items per second over `count` items (cycling through the dataset), after one warm-up item."""
    dataset[0]
    start = time.perf_counter()
    for i in range(count):
        dataset[i % len(dataset)]
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, default=3, help="synthetic episodes (default 3)")
    parser.add_argument(
        "--length", type=int, default=60, help="frames per episode (default 60 = 4 s at 15 fps)"
    )
    parser.add_argument(
        "--height", type=int, default=720, help="native video height (default 720, DROID raw)"
    )
    parser.add_argument(
        "--width", type=int, default=1280, help="native video width (default 1280, DROID raw)"
    )
    parser.add_argument(
        "--size", type=int, default=256, help="training resolution (default 256, the released model)"
    )
    parser.add_argument(
        "--clips",
        type=int,
        default=12,
        help="raw clips timed; the cache is timed on 10x as many (default 12)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec = ClipSpec(frames_per_clip=8, fps=4.0)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp) / "raw"
        for i in range(args.episodes):
            states = random_states(rng, args.length)
            frames = {"11111111": textured_frames(rng, args.length, args.height, args.width)}
            write_episode(root / f"ep{i:03d}", states[:, :6], states[:, 6], frames)
        start = time.perf_counter()
        convert(root, pathlib.Path(tmp) / "cache", size=args.size, cameras=["ext1"], progress=False)
        convert_seconds = time.perf_counter() - start

        raw = RawClipDataset(root, spec, cameras=["ext1"], size=args.size, seed=0, progress=False)
        cached = CachedClipDataset(pathlib.Path(tmp) / "cache", spec, seed=0)
        raw_rate = time_items(raw, args.clips)
        cached_rate = time_items(cached, args.clips * 10)

    print(
        f"{args.episodes} episodes x {args.length} frames, {args.height}x{args.width} H.264 -> {args.size} px, "
        f"clips of {spec.frames_per_clip} frames at {spec.fps} fps; conversion took {convert_seconds:.1f} s"
    )
    print(f"| {'reader':<22} | {'clips/s':>9} | {'speed-up':>8} |")
    print(f"|{'-' * 24}|{'-' * 11}|{'-' * 10}|")
    print(f"| {'raw episodes (PyAV)':<22} | {raw_rate:>9.1f} | {1.0:>7.1f}x |")
    print(f"| {'zarr cache':<22} | {cached_rate:>9.1f} | {cached_rate / raw_rate:>7.1f}x |")


if __name__ == "__main__":
    main()
