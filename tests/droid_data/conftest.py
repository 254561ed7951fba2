"""Fixtures writing tiny DROID-format episodes (never downloaded)."""

import pytest

from droid_data.synthetic import write_synthetic_episode


@pytest.fixture
def write_tiny_episode(tmp_path):
    """write_tiny_episode(name="episode", length=20, cameras=(...), size=(32, 32), seed=0, **write_kwargs)."""

    def write(name="episode", **kwargs):
        return write_synthetic_episode(tmp_path / name, **kwargs)

    return write
