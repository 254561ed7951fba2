"""Headless rendering without exporting anything, and one clear line when this machine cannot render."""
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import mujoco
import pytest

import envs  # noqa: F401  (registers the tasks)
from envs import rendering
from vjepa_ac.cli import collect

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("environ, platform, expected", [
    ({}, "linux", "egl"),  # a server: no display, nothing set
    ({"DISPLAY": ":0"}, "linux", None),  # a desktop: MuJoCo's own default (GLFW)
    ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", None),
    ({"MUJOCO_GL": "osmesa"}, "linux", "osmesa"),  # the user's choice wins
    ({"MUJOCO_GL": "glfw"}, "linux", "glfw"),
    ({}, "darwin", None),  # macOS renders with CGL; EGL does not exist there
    ({}, "win32", None),
])
def test_egl_is_the_default_only_on_linux_without_display_or_choice(environ, platform, expected):
    environ = dict(environ)
    assert rendering.default_headless(environ, platform) == expected
    assert environ.get("MUJOCO_GL") == expected


def test_a_fresh_process_renders_headless_with_nothing_exported():
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "DISPLAY", "WAYLAND_DISPLAY",
                                                             "PYOPENGL_PLATFORM")}
    code = ("import os, gymnasium as gym, envs\n"
            "env = gym.make('FrankaReach-v0', image_size=32)\n"
            "obs, _ = env.reset(seed=0)\n"
            "print(os.environ['MUJOCO_GL'], obs['rgb'].shape, int(obs['rgb'].max()) - int(obs['rgb'].min()))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, "OMP_NUM_THREADS": "1"},
                         capture_output=True, text=True, timeout=180, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    backend, shape, contrast = out.stdout.split(" ", 1)[0], *out.stdout.strip().rsplit(" ", 1)
    assert backend == "egl" and "(32, 32, 3)" in shape and int(contrast) > 50  # a real picture, not a blank


def _no_egl(monkeypatch):
    def missing():
        raise OSError("libEGL.so.1: cannot open shared object file: No such file or directory")

    monkeypatch.setenv("MUJOCO_GL", "egl")
    monkeypatch.setattr(rendering, "_load_egl", missing)


def test_missing_egl_is_one_line_naming_the_library_and_the_fix(monkeypatch):
    _no_egl(monkeypatch)
    with pytest.raises(rendering.RenderingUnavailable) as info:
        gym.make("FrankaReach-v0", image_size=32)
    message = str(info.value)
    assert "\n" not in message
    assert "MUJOCO_GL=egl" in message and "libEGL.so.1" in message and "apt-get install libegl1" in message


def test_the_commands_report_missing_egl_as_one_line(monkeypatch, tmp_path, capsys):
    _no_egl(monkeypatch)
    assert collect.main(["--task", "reach", "--episodes", "1", "--out", str(tmp_path / "data")]) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]  # (after collect's progress bar)
    assert len(errors) == 1 and errors[0].startswith("error: MuJoCo rendering (MUJOCO_GL=egl) needs libEGL.so.1")
    assert "Traceback" not in err and err.rstrip().endswith(errors[0])


def test_mujocos_raw_context_error_is_replaced_by_a_clear_one(monkeypatch):
    def fails(*args, **kwargs):
        raise mujoco.FatalError("an OpenGL platform library has not been loaded into this process")

    monkeypatch.setenv("MUJOCO_GL", "glfw")
    monkeypatch.setattr(mujoco, "Renderer", fails)
    with pytest.raises(rendering.RenderingUnavailable, match=r"could not open an OpenGL context .*'glfw'.*"
                                                             r"not been loaded.*set MUJOCO_GL=egl.*libegl1"):
        gym.make("FrankaReach-v0", image_size=32)
