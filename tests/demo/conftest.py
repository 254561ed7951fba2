"""One torch thread for the demo tests: their ops are tiny, and on a shared 2-core machine a second thread
spin-waits far more than it computes (a 1 s head fit took 55 s with 2 threads under load)."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
