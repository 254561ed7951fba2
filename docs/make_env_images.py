#!/usr/bin/env python
"""Regenerate the env images of docs/envs.md: start, sub-goal and goal images of every task for reset(seed=2),
at 64 px (shown enlarged) and at 256 px, plus the scene options (cup, colour, moved camera).

    MUJOCO_GL=egl python docs/make_env_images.py   # writes docs/images/envs_*.png
"""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
from PIL import Image, ImageDraw

from envs import TASKS

OUT = Path(__file__).parent / "images"
PANEL, TITLE, GAP = 256, 22, 30


def panels(env_id: str, cls, size: int, seed: int = 2, **options) -> list[tuple[str, np.ndarray]]:
    env = cls(image_size=size, **options)
    obs, info = env.reset(seed=seed)
    env.close()
    images = [("start", obs["rgb"])]
    images += [(f"sub-goal {k + 1}", image) for k, image in enumerate(info["subgoal_rgbs"])]
    return images + [("goal_rgb", info["goal_rgb"])]


def sheet(rows: list[list[tuple[str, np.ndarray]]], gap_after: int | None = None) -> Image.Image:
    """Rows of (title, image) panels, every image shown at 256 px (nearest-neighbour)."""
    width = max(len(row) for row in rows) * PANEL + (GAP if gap_after else 0)
    canvas = Image.new("RGB", (width, len(rows) * (PANEL + TITLE)), "white")
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(rows):
        for c, (title, image) in enumerate(row):
            x = c * PANEL + (GAP if gap_after is not None and c >= gap_after else 0)
            y = r * (PANEL + TITLE)
            draw.text((x + 4, y + 5), title, fill="black")
            canvas.paste(Image.fromarray(image).resize((PANEL, PANEL), Image.NEAREST), (x, y + TITLE))
    return canvas


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for task, (env_id, cls) in TASKS.items():
        small = [(f"{env_id}: {t} (64 px)", im) for t, im in panels(env_id, cls, 64)]
        large = [(f"{env_id}: {t} (256 px)", im) for t, im in panels(env_id, cls, 256)]
        if len(small) == 2:  # start | goal at 64 px, then at 256 px, side by side
            image = sheet([small + large], gap_after=2)
        else:  # sub-goals: one row per resolution
            image = sheet([small, large])
        image.save(OUT / f"envs_{task}.png")
        print(OUT / f"envs_{task}.png")
    options = [("object='cup'", {"object": "cup"}), ("object_rgba=(0.9, 0.2, 0.6)", {"object_rgba": (0.9, 0.2, 0.6)}),
               ("camera_offset=(0.1, 0.15, -0.1)", {"camera_offset": (0.1, 0.15, -0.1)}),
               ("camera='ext2'", {"camera": "ext2"})]
    cls = TASKS["grasp"][1]
    rows = [[(f"FrankaGrasp-v0, {title}: {t}", im) for t, im in panels("FrankaGrasp-v0", cls, 128, **kw)] for title, kw in options]
    sheet([[panel for row in rows[:2] for panel in row], [panel for row in rows[2:] for panel in row]],
          gap_after=2).save(OUT / "envs_options.png")
    print(OUT / "envs_options.png")


if __name__ == "__main__":
    main()
