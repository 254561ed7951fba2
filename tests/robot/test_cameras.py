"""PyAVCamera on a video file (the same code path as a stream URL)."""
import av
import numpy as np
import pytest

from robot.cameras import PyAVCamera


def write_video(path, frames):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=15)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_newest_frame_is_square_resized_rgb(tmp_path):
    frames = np.zeros((6, 48, 80, 3), np.uint8)
    frames[:, :, 16:64] = (200, 30, 30)  # the central 48x48 square is red, the sides black
    write_video(tmp_path / "cam.mp4", frames)
    camera = PyAVCamera(str(tmp_path / "cam.mp4"), size=32, loop=True)
    try:
        image = camera()
        assert image.shape == (32, 32, 3) and image.dtype == np.uint8
        assert image[..., 0].mean() > 150 and image[..., 1].mean() < 80  # the crop kept the centre only
    finally:
        camera.close()


def test_end_of_stream_is_an_error(tmp_path):
    write_video(tmp_path / "cam.mp4", np.zeros((2, 16, 16, 3), np.uint8))
    camera = PyAVCamera(str(tmp_path / "cam.mp4"), size=16)
    try:
        camera._thread.join(timeout=5)
        with pytest.raises(RuntimeError, match="end of stream"):
            camera()
    finally:
        camera.close()
