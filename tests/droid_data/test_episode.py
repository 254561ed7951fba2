"""Writing and reading DROID raw-format episodes, including ones written without droid_data."""

import json
import pathlib

import av
import h5py
import numpy as np
import pytest

from droid_data import EpisodeError, find_episodes, pose_diffs, read_episode, write_episode
from droid_data.synthetic import frame_index_of, make_frames, random_states
from droid_data.video import decode_frames, encode_video, probe_video


def decoded_index(frame, camera, length):
    return frame_index_of(frame, length, camera)


def test_round_trip_states_frames_and_metadata(write_tiny_episode):
    extrinsics = {
        "11111111": [0.1, -0.4, 0.5, 0, 0, 0],
        "22222222": np.tile([0.1, 0.4, 0.5, 0, 0, 0], (20, 1)),
    }
    path, states = write_tiny_episode(
        camera_extrinsics=extrinsics, metadata={"current_task": "push the cube", "success": True}
    )
    episode = read_episode(path)
    assert episode.num_frames == 20 and episode.fps == 15.0
    np.testing.assert_array_equal(episode.states, states)
    assert episode.states.dtype == np.float64
    np.testing.assert_allclose(episode.actions, pose_diffs(states))
    assert episode.cameras == ["11111111", "22222222"]
    assert episode.joint_positions.shape == (20, 7)
    assert episode.metadata["current_task"] == "push the cube" and episode.metadata["success"] is True
    # DROID's left/right heuristic: the exterior camera with larger y is "left".
    assert episode.serial("left") == "22222222" and episode.serial("right_mp4_path") == "11111111"
    np.testing.assert_allclose(episode.extrinsics("ext1"), np.tile(extrinsics["11111111"], (20, 1)))
    indices = [7, 0, 19, 7, 3]
    for camera_number, camera in enumerate(episode.cameras):
        frames = episode.load_frames(camera, indices)
        assert frames.dtype == np.uint8 and frames.shape == (5, 32, 32, 3)
        assert [decoded_index(f, camera_number, 20) for f in frames] == indices
        np.testing.assert_allclose(
            frames.astype(float), make_frames(20, camera=camera_number)[indices], atol=6
        )


def test_metadata_keys_follow_droid(write_tiny_episode):
    path, _ = write_tiny_episode(
        cameras=("100", "200", "300"), camera_roles={"100": "wrist", "200": "ext1", "300": "ext2"}
    )
    (metadata_file,) = path.glob("metadata_*.json")
    metadata = json.loads(metadata_file.read_text())
    assert metadata_file.name == f"metadata_{metadata['uuid']}.json"
    assert metadata["wrist_cam_serial"] == "100" and metadata["ext1_cam_serial"] == "200"
    assert metadata["wrist_mp4_path"] == "recordings/MP4/100.mp4"
    assert metadata["ext2_mp4_path"] == "recordings/MP4/300.mp4"
    assert {metadata["left_mp4_path"], metadata["right_mp4_path"]} == {
        "recordings/MP4/200.mp4",
        "recordings/MP4/300.mp4",
    }
    assert metadata["trajectory_length"] == 20
    with h5py.File(path / "trajectory.h5") as h5:
        assert h5["observation/camera_type/100"][0] == 0 and h5["observation/camera_type/300"][0] == 1


def test_mp4_is_standard_h264_with_right_count_and_fps(tmp_path):
    frames = make_frames(20, (48, 64))
    encode_video(tmp_path / "v.mp4", frames, fps=15.0)
    with av.open(str(tmp_path / "v.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert float(stream.average_rate) == 15.0
        assert (stream.height, stream.width) == (48, 64)
    info = probe_video(tmp_path / "v.mp4")
    assert info.num_frames == 20 and info.fps == 15.0


@pytest.mark.parametrize("codec", ["libsvtav1", "mpeg4"])
def test_decodes_av1_and_mpeg4(tmp_path, codec):
    frames = make_frames(12, (64, 64))
    encode_video(tmp_path / "v.mp4", frames, codec=codec)
    decoded = decode_frames(tmp_path / "v.mp4", [11, 2, 5])
    assert [decoded_index(f, 0, 12) for f in decoded] == [11, 2, 5]
    assert decode_frames(tmp_path / "v.mp4").shape == (12, 64, 64, 3)


def test_seek_and_sequential_decoding_agree(tmp_path):
    frames = make_frames(20)
    path = tmp_path / "v.mp4"
    with av.open(str(path), "w") as container:  # keyframe every 4 frames, so seeking skips data
        stream = container.add_stream("libx264", rate=15, options={"crf": "10"})
        stream.width, stream.height, stream.pix_fmt, stream.gop_size = 32, 32, "yuv420p", 4
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    everything = decode_frames(path)
    assert [frame_index_of(f, 20) for f in everything] == list(range(20))
    np.testing.assert_array_equal(decode_frames(path, [13, 14, 19, 6]), everything[[13, 14, 19, 6]])
    with pytest.raises(IndexError, match="past the last decodable frame"):
        decode_frames(path, [20])


def write_like_droid(folder: pathlib.Path, states: np.ndarray, serials=("23897859", "26405488", "18026681")):
    """An episode laid out as the public DROID raw release, written with h5py + PyAV only (no droid_data writer):
    lab-relative MP4 paths in the metadata, MPEG-4 part 2 video (DROID's cv2 'mp4v'), stereo MP4 siblings."""
    length = len(states)
    mp4_dir = folder / "recordings" / "MP4"
    mp4_dir.mkdir(parents=True)
    for camera, serial in enumerate(serials):
        frames = make_frames(length, (36, 64), camera=camera)
        with av.open(str(mp4_dir / f"{serial}.mp4"), "w") as container:
            stream = container.add_stream("mpeg4", rate=15)
            stream.width, stream.height, stream.pix_fmt, stream.bit_rate = 64, 36, "yuv420p", 2_000_000
            for image in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(stream.encode())
        (mp4_dir / f"{serial}-stereo.mp4").write_bytes(b"not read")
    with h5py.File(folder / "trajectory.h5", "w") as h5:
        robot_state = h5.create_group("observation/robot_state")
        robot_state["cartesian_position"] = states[:, :6]
        robot_state["gripper_position"] = states[:, 6]
        robot_state["joint_positions"] = np.zeros((length, 7))
        for serial in serials:
            h5[f"observation/camera_extrinsics/{serial}_left"] = np.zeros((length, 6))
            h5[f"observation/camera_extrinsics/{serial}_right"] = np.ones((length, 6))
        h5["action/cartesian_position"] = states[:, :6]
        h5.attrs["current_task"] = "put the marker in the cup"
    relative = f"AUTOLab/success/2023-07-07/{folder.name}/recordings/MP4"
    metadata = {
        "uuid": "AUTOLab+5d05c5aa+2023-07-07-09h-42m-22s",
        "trajectory_length": length,
        "wrist_cam_serial": serials[0],
        "ext1_cam_serial": serials[1],
        "ext2_cam_serial": serials[2],
        "wrist_mp4_path": f"{relative}/{serials[0]}.mp4",
        "ext1_mp4_path": f"{relative}/{serials[1]}.mp4",
        "ext2_mp4_path": f"{relative}/{serials[2]}.mp4",
        "left_mp4_path": f"{relative}/{serials[2]}.mp4",
        "right_mp4_path": f"{relative}/{serials[1]}.mp4",
        "ext1_cam_extrinsics": [0.1, -0.5, 0.4, 0, 0, 0],
    }
    (folder / f"metadata_{metadata['uuid']}.json").write_text(json.dumps(metadata))


def test_reads_episode_written_like_public_droid(tmp_path):
    states = random_states(np.random.default_rng(3), 18)
    folder = tmp_path / "Fri_Jul__7_09:42:22_2023"
    write_like_droid(folder, states)
    episode = read_episode(folder)
    np.testing.assert_array_equal(episode.states, states)
    assert episode.cameras == ["26405488", "18026681", "23897859"]  # ext1, ext2, wrist; stereo files ignored
    assert episode.serial("left_mp4_path") == "18026681"
    assert episode.fps == 15.0
    frames = episode.load_frames("left", [17, 0, 9])
    assert frames.shape == (3, 36, 64, 3)
    assert [decoded_index(f, 2, 18) for f in frames] == [17, 0, 9]
    wrist = episode.load_frames("wrist", [4])
    assert decoded_index(wrist[0], 0, 18) == 4
    np.testing.assert_array_equal(episode.extrinsics("ext1"), np.zeros((18, 6)))


def test_find_episodes_from_root_and_index_files(tmp_path, write_tiny_episode):
    first, _ = write_tiny_episode("lab/a/ep1", length=4, cameras=("1",))
    second, _ = write_tiny_episode("lab/b/ep2", length=4, cameras=("1",))
    (tmp_path / "lab" / ".ep3.tmp-x").mkdir()  # a write in progress
    (tmp_path / "lab" / ".ep3.tmp-x" / "trajectory.h5").write_bytes(b"")
    assert find_episodes(tmp_path) == sorted([first, second])
    # official style: space-separated, no header, first column the trajectory directory
    (tmp_path / "index.csv").write_text(f"{second} 0\n{first}/trajectory.h5 1\n")
    assert find_episodes(tmp_path / "index.csv") == [second, first]
    (tmp_path / "list.txt").write_text("path\n# comment\nlab/a/ep1\n")
    assert find_episodes(tmp_path / "list.txt") == [first]
    with pytest.raises(FileNotFoundError, match="nowhere"):
        find_episodes(tmp_path / "nowhere")
    (tmp_path / "partly.txt").write_text("lab/a/ep1\nlab/gone\n")  # a missing folder is the validator's to report
    assert find_episodes(tmp_path / "partly.txt") == [first, tmp_path / "lab" / "gone"]


def test_index_file_listing_no_existing_folder_names_the_index(tmp_path):
    notes = tmp_path / "notes.txt"  # e.g. a text file given as the data path: its first words are no folders
    notes.write_text("this is not an index\nnor this\n")
    with pytest.raises(FileNotFoundError, match=r"notes\.txt: none of the 2 episode folders .* exists"):
        find_episodes(notes)


def test_writer_is_atomic_and_refuses_to_overwrite(tmp_path, write_tiny_episode):
    _path, _ = write_tiny_episode("ep", length=3, cameras=("1",))
    with pytest.raises(FileExistsError, match="already exists"):
        write_tiny_episode("ep", length=3, cameras=("1",))
    bad = {"1": make_frames(3)[:, :31]}  # odd height: the encoder fails midway
    with pytest.raises(ValueError, match="even"):
        write_episode(tmp_path / "broken", np.zeros((3, 6)), np.zeros(3), bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ep"]  # no partial folder, no temp left behind


def test_writer_validates_inputs(tmp_path):
    frames = {"1": make_frames(5)}
    with pytest.raises(ValueError, match=r"gripper_position expected shape \[5\], got \[4\]"):
        write_episode(tmp_path / "e", np.zeros((5, 6)), np.zeros(4), frames)
    with pytest.raises(ValueError, match=r"frames\['1'\] expected uint8 \[6, H, W, 3\]"):
        write_episode(tmp_path / "e", np.zeros((6, 6)), np.zeros(6), frames)
    with pytest.raises(ValueError, match="NaN"):
        write_episode(tmp_path / "e", np.full((5, 6), np.nan), np.zeros(5), frames)
    with pytest.raises(ValueError, match="distinct role"):
        write_episode(tmp_path / "e", np.zeros((5, 6)), np.zeros(5), frames, camera_roles={"1": "top"})


def test_unknown_camera_and_bad_indices_are_clear(write_tiny_episode):
    path, _ = write_tiny_episode(length=5, cameras=("1",))
    episode = read_episode(path)
    with pytest.raises(KeyError, match="unknown camera 'nope'"):
        episode.load_frames("nope", [0])
    with pytest.raises(IndexError, match=r"\[0, 5\)"):
        episode.load_frames("1", [5])


def test_read_errors_name_kind_and_file(tmp_path, write_tiny_episode):
    path, _ = write_tiny_episode(length=5, cameras=("1",))
    with h5py.File(path / "trajectory.h5", "a") as h5:
        del h5["observation/robot_state/gripper_position"]
    with pytest.raises(EpisodeError, match="missing_key.*trajectory.h5.*gripper_position") as info:
        read_episode(path)
    assert info.value.kind == "missing_key"
