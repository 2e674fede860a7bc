"""Fixtures shared by the unit tests (the repo-wide settings are in ../conftest.py)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread in every test, restored after: the models here are tiny, where a second
    thread only adds waiting (a lot, on a busy shared machine), and a test that changes the
    thread count (the CLI may) cannot leak it into the next one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
