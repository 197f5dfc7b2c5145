import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "huge: needs many GiB of memory (deselect with -m 'not huge')")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture(autouse=True)
def _seed():
    import torch

    torch.manual_seed(0)
