"""Model tests run single-threaded: tiny tensors on a shared 2-core machine are much faster that way."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
