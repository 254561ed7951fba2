"""Camera frames for a real robot: a PyAV reader that always returns the newest frame.

`PyAVCamera(source)` opens anything FFmpeg opens — a stream URL (rtsp://, http://), a device with an input
format (e.g. "/dev/video0" with input_format="v4l2" when the PyAV build has that demuxer) or a video file —
and decodes it in a background thread so a call never waits for more than the newest frame. Frames are
center-cropped to a square and resized to `size` (the planner's input), uint8 RGB [size, size, 3].
"""
from __future__ import annotations

import threading
import time

import av
import numpy as np


class PyAVCamera:
    def __init__(self, source: str, size: int = 256, input_format: str | None = None, timeout_s: float = 5.0,
                 loop: bool = False):
        self.source = source
        self.size = int(size)
        self.loop = loop  # restart files at their end (for replaying a recording instead of a live camera)
        self._container = av.open(source, format=input_format, timeout=timeout_s)
        self._frame: np.ndarray | None = None
        self._error: BaseException | None = None
        self._new_frame = threading.Condition()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, name=f"camera {source}", daemon=True)
        self.timeout_s = timeout_s
        self._thread.start()

    def _square(self, frame: av.VideoFrame) -> np.ndarray:
        side = min(frame.width, frame.height)
        rgb = frame.to_ndarray(format="rgb24")
        top, left = (frame.height - side) // 2, (frame.width - side) // 2
        crop = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[top:top + side, left:left + side]), format="rgb24")
        return crop.reformat(width=self.size, height=self.size, format="rgb24").to_ndarray()

    def _read(self) -> None:
        try:
            while not self._closed.is_set():
                for frame in self._container.decode(video=0):
                    image = self._square(frame)
                    with self._new_frame:
                        self._frame = image
                        self._new_frame.notify_all()
                    if self._closed.is_set():
                        return
                if not self.loop:
                    raise EOFError(f"camera {self.source}: end of stream")
                self._container.seek(0)
        except Exception as exc:  # noqa: BLE001  handed to the caller of __call__, which raises it
            with self._new_frame:
                self._error = exc
                self._new_frame.notify_all()

    def __call__(self) -> np.ndarray:
        """The newest frame; waits for the first one up to timeout_s."""
        deadline = time.monotonic() + self.timeout_s
        with self._new_frame:
            while self._frame is None and self._error is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"camera {self.source}: no frame within {self.timeout_s} s")
                self._new_frame.wait(remaining)
            if self._error is not None:  # includes the end of a stream: the last frame would be stale
                raise RuntimeError(f"camera {self.source} failed: {self._error!r}") from self._error
            return self._frame.copy()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=2.0)
        self._container.close()
