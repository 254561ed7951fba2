"""Each DROID corruption kind is reported by name, file and reason; the CLI exits non-zero."""

import os
import pathlib
import subprocess
import sys

import h5py
import numpy as np
import pytest

import droid_data
from droid_data.__main__ import main
from droid_data.episode import CORRUPTION_KINDS
from droid_data.synthetic import make_frames
from droid_data.validate import validate_episode, validate_episodes
from droid_data.video import encode_video

SERIAL = "11111111"


def truncate(path, fraction=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def corrupt_unreadable_h5(path):
    truncate(path / "trajectory.h5")
    return path / "trajectory.h5"


def corrupt_missing_mp4(path):
    (path / "recordings/MP4" / f"{SERIAL}.mp4").unlink()
    return path / "recordings/MP4" / f"{SERIAL}.mp4"


def corrupt_truncated_mp4(path):
    truncate(path / "recordings/MP4" / f"{SERIAL}.mp4")
    return path / "recordings/MP4" / f"{SERIAL}.mp4"


def corrupt_missing_metadata(path):
    (metadata,) = path.glob("metadata_*.json")
    metadata.unlink()
    return path / "metadata_<uuid>.json"


def corrupt_missing_key(path):
    with h5py.File(path / "trajectory.h5", "a") as h5:
        del h5["observation/robot_state/cartesian_position"]
    return path / "trajectory.h5"


def corrupt_nonfinite_state(path):
    with h5py.File(path / "trajectory.h5", "a") as h5:
        h5["observation/robot_state/cartesian_position"][3, 4] = np.inf
        h5["observation/robot_state/gripper_position"][5] = np.nan
    return path / "trajectory.h5"


def corrupt_length_mismatch(path):
    video = path / "recordings/MP4" / f"{SERIAL}.mp4"
    video.unlink()
    encode_video(video, make_frames(9))  # a valid video, one frame short of the 10 state rows
    return video


CORRUPTIONS = {
    "unreadable_h5": corrupt_unreadable_h5,
    "missing_mp4": corrupt_missing_mp4,
    "truncated_mp4": corrupt_truncated_mp4,
    "missing_metadata": corrupt_missing_metadata,
    "missing_key": corrupt_missing_key,
    "nonfinite_state": corrupt_nonfinite_state,
    "length_mismatch": corrupt_length_mismatch,
}


def test_every_droid_kind_is_covered():  # the LeRobot-only kinds are covered in test_lerobot.py
    assert set(CORRUPTIONS) == set(CORRUPTION_KINDS) - {"unreadable_parquet", "undecodable_image"}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_each_corruption_is_reported_by_kind_and_file(write_tiny_episode, kind):
    path, _ = write_tiny_episode(kind, length=10, cameras=(SERIAL, "22222222"))
    assert validate_episode(path) == []
    bad_file = CORRUPTIONS[kind](path)
    problems = validate_episode(path)
    assert [p.kind for p in problems] == [kind], problems
    assert problems[0].file == str(bad_file)
    assert problems[0].reason


def test_nonfinite_reason_names_field_and_row(write_tiny_episode):
    path, _ = write_tiny_episode(length=10, cameras=(SERIAL,))
    corrupt_nonfinite_state(path)
    (problem,) = validate_episode(path)
    assert "2 state rows contain NaN/Inf" in problem.reason and "cartesian_position row 3" in problem.reason


def test_index_file_entry_without_h5_is_reported(tmp_path, write_tiny_episode):
    path, _ = write_tiny_episode("ep", length=6, cameras=(SERIAL,))
    (path / "trajectory.h5").unlink()
    (tmp_path / "index.txt").write_text(f"{path}\n")
    count, problems = validate_episodes(tmp_path / "index.txt", progress=False)
    assert count == 1 and [p.kind for p in problems] == ["unreadable_h5"]
    assert "does not exist" in problems[0].reason


def test_decode_all_passes_a_good_episode(write_tiny_episode):
    path, _ = write_tiny_episode(length=10, cameras=(SERIAL,))
    assert validate_episode(path, decode_all=True) == []


def test_cli_reports_all_bad_episodes_and_exits_nonzero(tmp_path, write_tiny_episode, capsys):
    for kind, corrupt in CORRUPTIONS.items():
        path, _ = write_tiny_episode(f"root/{kind}", length=10, cameras=(SERIAL, "22222222"))
        corrupt(path)
    write_tiny_episode("root/good", length=10, cameras=(SERIAL,))
    count, problems = validate_episodes(tmp_path / "root", progress=False)
    assert count == 8 and sorted(p.kind for p in problems) == sorted(CORRUPTIONS)
    assert main(["validate", str(tmp_path / "root"), "--quiet"]) == 1
    out = capsys.readouterr().out
    for kind in CORRUPTIONS:
        line = next(line for line in out.splitlines() if line.startswith(f"BAD {tmp_path / 'root' / kind}:"))
        assert f": {kind}: " in line
    assert "8 episodes checked, 1 good, 7 bad" in out


def test_cli_exit_codes(tmp_path, write_tiny_episode, capsys):
    path, _ = write_tiny_episode("root/good", length=6, cameras=(SERIAL,))
    assert main(["validate", str(tmp_path / "root"), "--quiet"]) == 0
    assert "1 episodes checked, 1 good, 0 bad" in capsys.readouterr().out
    corrupt_truncated_mp4(path)
    # the real entry point, as users run it
    command = [sys.executable, "-m", "droid_data", "validate", str(tmp_path / "root"), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(droid_data.__file__).parents[1])}
    bad = subprocess.run(command, check=False, capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 1, bad.stderr
    assert "truncated_mp4" in bad.stdout and f"{SERIAL}.mp4" in bad.stdout


def test_cli_with_no_episodes_exits_2(tmp_path, capsys):
    assert main(["validate", str(tmp_path), "--quiet"]) == 2
    assert "no episodes" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["convert", "ROOT", "OUT", "--size", "0"],
        ["convert", "ROOT", "OUT", "--size", "8", "8", "8"],
        ["convert", "ROOT", "OUT", "--crop-aspect", "nan"],
        ["convert", "ROOT", "OUT", "--chunk-frames", "-1"],
        ["validate"],
    ],
)
def test_cli_usage_errors_exit_2(tmp_path, argv, capsys):
    argv = [str(tmp_path / a) if a in ("ROOT", "OUT") else a for a in argv]
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.splitlines()  # one line, no usage block
    assert line.startswith("error: ")


def test_cli_binary_root_file_is_a_one_line_usage_error(tmp_path, capsys):
    (tmp_path / "episodes.bin").write_bytes(bytes(range(256)))
    assert main(["validate", str(tmp_path / "episodes.bin"), "--quiet"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(
        f"error: {tmp_path / 'episodes.bin'}: expected an episode root folder or a text index"
    )


def test_cli_unexpected_errors_are_one_line_unless_debug(tmp_path, monkeypatch, capsys):
    import droid_data.__main__ as cli

    def broken(*args, **kwargs):
        raise RuntimeError("something\nunforeseen")

    monkeypatch.setattr(cli, "validate_episodes", broken)
    monkeypatch.delenv("VJEPA_AC_DEBUG", raising=False)
    assert main(["validate", str(tmp_path), "--quiet"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line == "error: RuntimeError: something unforeseen (rerun with --debug for the traceback)"
    with pytest.raises(RuntimeError, match="unforeseen"):
        main(["validate", str(tmp_path), "--quiet", "--debug"])
    monkeypatch.setenv("VJEPA_AC_DEBUG", "1")
    with pytest.raises(RuntimeError, match="unforeseen"):
        main(["validate", str(tmp_path), "--quiet"])


def test_problems_and_errors_are_one_line():  # library messages (e.g. pyarrow's thrift errors) end in newlines
    from droid_data.validate import Problem

    error = droid_data.EpisodeError(
        "ep", "unreadable_parquet", "f.parquet", "Couldn't deserialize thrift:\n eof\n"
    )
    assert str(error) == "unreadable_parquet: f.parquet: Couldn't deserialize thrift: eof"
    assert str(Problem("ep", "truncated_mp4", "a.mp4", "x\ny")) == "ep: truncated_mp4: a.mp4: x y"
