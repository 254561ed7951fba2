"""Which OpenGL MuJoCo renders with, and one clear error when it cannot.

MuJoCo reads ``MUJOCO_GL`` once, when ``mujoco`` is first imported, and without it uses GLFW, which needs a
display: on a server a fresh shell died with MuJoCo's raw "an OpenGL platform library has not been loaded".
So this module calls ``default_headless()`` when imported, and ``envs/__init__.py`` imports it before anything
imports mujoco:

- Linux, no ``MUJOCO_GL`` and no display (``DISPLAY`` / ``WAYLAND_DISPLAY`` unset): ``MUJOCO_GL=egl``, headless.
- A ``MUJOCO_GL`` the user set (egl, osmesa, glfw), a display, macOS or Windows: left to the user and MuJoCo.

``make_renderer`` is how ``envs`` opens MuJoCo's offscreen renderer: when EGL is the backend but ``libEGL.so.1``
cannot be loaded, or MuJoCo cannot make a context at all, it raises ``RenderingUnavailable``, one line naming
the backend, the missing library and how to install it.
"""
from __future__ import annotations

import ctypes
import os
import sys

EGL_LIBRARIES = ("libEGL.so.1", "libEGL.so")  # the names PyOpenGL's EGL platform (MuJoCo's EGL backend) loads
INSTALL_HINT = ("install EGL (Debian/Ubuntu: apt-get install libegl1 libgl1-mesa-dri; Fedora: dnf install "
                "mesa-libEGL mesa-dri-drivers; conda: conda install -c conda-forge libegl mesalib), or pick "
                "another backend: MUJOCO_GL=osmesa (apt-get install libosmesa6) or MUJOCO_GL=glfw with a display")


class RenderingUnavailable(OSError):
    """MuJoCo cannot render on this machine; the message names the backend, the library and the fix."""


def default_headless(environ=None, platform: str | None = None) -> str | None:
    """Set ``MUJOCO_GL=egl`` on a Linux machine with no display and no ``MUJOCO_GL``; return the value in force.

    Must run before ``mujoco`` is imported (``envs/__init__.py`` does). ``environ`` / ``platform``: for tests."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    display = environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")
    if "MUJOCO_GL" not in environ and platform.startswith("linux") and not display:
        environ["MUJOCO_GL"] = "egl"
    return environ.get("MUJOCO_GL")


def _load_egl() -> None:
    """dlopen libEGL as PyOpenGL would; ``OSError`` naming what was tried when it is absent."""
    errors = []
    for name in EGL_LIBRARIES:
        try:
            ctypes.CDLL(name)
            return
        except OSError as e:
            errors.append(str(e))
    raise OSError("; ".join(errors))


def check_egl() -> None:
    """With ``MUJOCO_GL=egl``: ``RenderingUnavailable`` unless libEGL loads (MuJoCo's own error names nothing)."""
    if os.environ.get("MUJOCO_GL", "").strip().lower() != "egl":
        return
    try:
        _load_egl()
    except OSError as e:
        raise RenderingUnavailable(f"MuJoCo rendering (MUJOCO_GL=egl) needs {EGL_LIBRARIES[0]}, which cannot be "
                                   f"loaded ({' '.join(str(e).split())}); {INSTALL_HINT}") from None


def make_renderer(model, height: int, width: int):
    """``mujoco.Renderer(model, height, width)``, or ``RenderingUnavailable`` saying why it cannot be made."""
    import mujoco

    check_egl()
    try:
        return mujoco.Renderer(model, height, width)
    except Exception as e:  # mujoco.FatalError, ImportError of a backend, EGL device errors: all "cannot render"
        backend = getattr(getattr(mujoco, "GLContext", None), "__module__", "no backend")  # what MuJoCo picked
        late = (" (mujoco was imported before envs, so MUJOCO_GL was read before envs could default it to egl)"
                if os.environ.get("MUJOCO_GL") == "egl" and backend.endswith("glfw") else "")
        headless = "" if os.environ.get("MUJOCO_GL") == "egl" and not late else "for headless rendering set " \
            "MUJOCO_GL=egl before anything imports mujoco, and "
        raise RenderingUnavailable(f"MuJoCo could not open an OpenGL context with {backend} "
                                   f"(MUJOCO_GL={os.environ.get('MUJOCO_GL')!r}{late}: {' '.join(str(e).split())}); "
                                   f"{headless}{INSTALL_HINT}") from e


default_headless()  # at import: envs/__init__.py (and robot.backends.sim) import this module before mujoco
