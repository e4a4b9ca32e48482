"""Device selection, seeding and progress bars."""

import random

import numpy as np
import pytest
import torch

from slt_course_utils import get_device, set_seed
from slt_course_utils.device import describe_device
from slt_course_utils.progress import progress, progress_enabled
from slt_course_utils.seeding import make_generator


def test_auto_device_is_available(monkeypatch):
    monkeypatch.delenv("SLT_DEVICE", raising=False)
    device = get_device()
    assert device.type in ("cpu", "cuda", "mps")
    torch.zeros(1, device=device)  # usable
    assert describe_device(device)


def test_cpu_override_by_argument_and_environment(monkeypatch):
    assert get_device("cpu").type == "cpu"
    monkeypatch.setenv("SLT_DEVICE", "cpu")
    assert get_device().type == "cpu"
    monkeypatch.setenv("SLT_DEVICE", "auto")
    assert get_device().type in ("cpu", "cuda", "mps")


def test_unknown_device_is_a_clear_error(monkeypatch):
    with pytest.raises(ValueError, match="Unknown device 'tpu'"):
        get_device("tpu")
    monkeypatch.setenv("SLT_DEVICE", "gpu")
    with pytest.raises(ValueError, match="SLT_DEVICE"):
        get_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_unavailable_device_says_what_is_available():
    with pytest.raises(ValueError, match="not available.*available: \\['cpu'"):
        get_device("cuda")


def test_set_seed_makes_all_streams_reproducible():
    set_seed(123)
    a = (random.random(), np.random.rand(), torch.rand(2))  # noqa: NPY002
    set_seed(123)
    b = (random.random(), np.random.rand(), torch.rand(2))  # noqa: NPY002
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
    g1, g2 = make_generator(5), make_generator(5)
    assert torch.equal(torch.randn(3, generator=g1), torch.randn(3, generator=g2))


@pytest.mark.parametrize("bad", [-1, 1.5, "7", None, True, 2**64])
def test_set_seed_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="seed"):
        set_seed(bad)


def test_progress_respects_flag_and_environment(monkeypatch):
    assert list(progress(range(3), enabled=False)) == [0, 1, 2]
    monkeypatch.setenv("SLT_PROGRESS", "0")
    assert not progress_enabled()
    assert progress(range(2)).disable
    monkeypatch.setenv("SLT_PROGRESS", "1")
    assert progress_enabled()
    assert progress_enabled(False) is False
