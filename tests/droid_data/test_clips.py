"""Clip sampling: official stride/window semantics, fixed off-by-ones, frame/state/action alignment."""

import numpy as np
import pytest

from droid_data.clips import ClipSpec, clip_span, clip_stride, cut_clip, sample_clip_indices
from droid_data.conventions import pose_diffs


def test_stride_matches_official_rounding():
    assert clip_stride(15.0, 4.0) == 4  # ceil(3.75): 3.75 Hz effective, as the official loader
    assert clip_stride(15.0, 5.0) == 3
    assert clip_stride(15.0, 15.0) == 1
    assert clip_stride(15.0, None) == 1
    assert clip_stride(30.0, 4.0) == 8


def test_windows_cover_every_valid_start_including_the_last_frames():
    spec = ClipSpec(frames_per_clip=8, fps=4.0)
    span = clip_span(spec, 15.0)
    assert span == 29
    rng = np.random.default_rng(0)
    num_frames = 35
    starts = {int(sample_clip_indices(num_frames, 15.0, spec, rng)[0]) for _ in range(2000)}
    assert starts == set(range(num_frames - span + 1))  # last valid start reaches the final frame
    last = sample_clip_indices(span, 15.0, spec, rng)  # exactly one clip long: allowed (the official crashes)
    np.testing.assert_array_equal(last, np.arange(0, 29, 4))


def test_too_short_episode_is_a_clear_error():
    with pytest.raises(ValueError, match="needs at least 29"):
        sample_clip_indices(28, 15.0, ClipSpec(), np.random.default_rng(0))


def test_states_and_actions_go_with_frames():
    states = np.cumsum(np.random.default_rng(1).normal(size=(40, 7)), axis=0)
    indices = np.arange(3, 3 + 8 * 4, 4)
    clip = cut_clip(states, indices, ClipSpec(frames_per_clip=8, fps=4.0))
    np.testing.assert_array_equal(clip.states, states[indices])  # state k is the state at frame indices[k]
    assert clip.actions.shape == (7, 7)
    np.testing.assert_allclose(clip.actions, pose_diffs(states[indices]))  # action k: frame k -> frame k+1


def test_frameskip_takes_states_at_tubelet_starts():
    states = np.random.default_rng(2).normal(size=(20, 7))
    indices = np.arange(8)
    clip = cut_clip(
        states, indices, ClipSpec(frames_per_clip=8, fps=None, frameskip=2), extrinsics=states[:, :6]
    )
    np.testing.assert_array_equal(clip.states, states[[0, 2, 4, 6]])
    np.testing.assert_array_equal(clip.extrinsics, states[[0, 2, 4, 6], :6])
    assert clip.actions.shape == (3, 7)


def test_spec_validation():
    with pytest.raises(ValueError, match="frameskip"):
        ClipSpec(frames_per_clip=8, frameskip=3)
    with pytest.raises(ValueError, match="frames_per_clip"):
        ClipSpec(frames_per_clip=1)


def test_camera_frame_option_transforms_states_then_diffs():
    from droid_data.conventions import to_camera_frame
    from droid_data.synthetic import random_states

    rng = np.random.default_rng(4)
    states = random_states(rng, 12)
    extrinsics = random_states(rng, 12)[:, :6]
    indices = np.arange(0, 12, 3)
    spec = ClipSpec(frames_per_clip=4, fps=5.0)
    clip = cut_clip(states, indices, spec, extrinsics, camera_frame=True)
    expected = to_camera_frame(states[indices], extrinsics[indices])
    np.testing.assert_allclose(clip.states, expected)
    np.testing.assert_allclose(clip.actions, pose_diffs(expected))
    with pytest.raises(ValueError, match="extrinsics"):
        cut_clip(states, indices, spec, None, camera_frame=True)
