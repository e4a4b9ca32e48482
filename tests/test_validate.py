"""The shared validators of ``slt_course_utils._validate``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from slt_course_utils import _validate as v


@pytest.mark.parametrize("x", [2, 2.5, np.float32(2.5), np.int64(2), torch.tensor(2.5), torch.tensor([2.5]),
                               torch.tensor(3, dtype=torch.int32)])
def test_real_scalar_accepts_python_numpy_and_0d_torch(x):
    assert v.real_scalar("x", x) == pytest.approx(float(np.asarray(x).reshape(())))


@pytest.mark.parametrize("x", [True, "1", None, 1j, torch.ones(2), torch.tensor(True), [1.0]])
def test_real_scalar_rejects_non_real(x):
    with pytest.raises(TypeError, match="x must be a real number"):
        v.real_scalar("x", x)


def test_input_type_error_is_both_type_and_value_error():
    with pytest.raises(ValueError):
        v.positive_int("n", 2.0)
    with pytest.raises(TypeError, match=r"n must be an integer, got float 2\.0 \(use int\(2\.0\)"):
        v.positive_int("n", 2.0)


@pytest.mark.parametrize(("fn", "bad"), [
    (v.finite_float, math.nan), (v.finite_float, math.inf),
    (v.positive_float, 0.0), (v.positive_float, -1.0), (v.positive_float, math.nan), (v.positive_float, math.inf),
    (v.nonnegative_float, -1e-9), (v.nonnegative_float, math.nan),
])
def test_float_validators_reject_bad_values(fn, bad):
    with pytest.raises(ValueError, match="lr must be"):
        fn("lr", bad)


def test_positive_float_allow_inf():
    assert v.positive_float("volume", math.inf, allow_inf=True) == math.inf
    assert v.positive_float("lr", np.float32(1e-3)) == pytest.approx(1e-3)
    assert v.nonnegative_float("s", 0) == 0.0


@pytest.mark.parametrize("x", [1, np.int64(3), torch.tensor(4)])
def test_positive_int_accepts_integral_types(x):
    assert v.positive_int("n", x) == int(x) and type(v.positive_int("n", x)) is int


@pytest.mark.parametrize("x", [0, -3])
def test_positive_int_rejects_non_positive(x):
    with pytest.raises(ValueError, match="n must be a positive integer"):
        v.positive_int("n", x)


@pytest.mark.parametrize("x", [True, 2.0, 2.7, "2", torch.tensor(2.0), np.float64(2)])
def test_positive_int_rejects_non_integers(x):
    with pytest.raises(TypeError, match="n must be an integer"):
        v.positive_int("n", x)


def test_int_in_range_and_nonnegative():
    assert v.int_in_range("r", 0, 0, 3) == 0
    assert v.nonnegative_int("r", 0) == 0
    with pytest.raises(ValueError, match=r"in \[0, 3\], got 4"):
        v.int_in_range("r", 4, 0, 3)
    with pytest.raises(ValueError, match="non-negative"):
        v.nonnegative_int("r", -1)


def test_int_sequence_reads_a_generator_once():
    assert v.int_sequence("widths", (w for w in [2, 3, 4]), min_len=2) == [2, 3, 4]
    assert v.int_sequence("widths", np.array([2, 3])) == [2, 3]
    assert v.int_sequence("widths", torch.tensor([2, 3])) == [2, 3]


@pytest.mark.parametrize(("seq", "err", "match"), [
    ([2.7, 3.9], TypeError, "must be integers"),
    ([2, 3.0], TypeError, "must be integers"),
    ([2, True], TypeError, "must be integers"),
    ([2], ValueError, "at least 2 entries"),
    ([2, 0], ValueError, "≥ 1"),
    ("23", TypeError, "sequence of integers"),
    (5, TypeError, "sequence of integers"),
])
def test_int_sequence_rejects(seq, err, match):
    with pytest.raises(err, match=match):
        v.int_sequence("widths", seq, min_len=2)


def test_finite_tensor():
    t = torch.ones(3)
    assert v.finite_tensor("W", t) is t
    with pytest.raises(ValueError, match="W contains 1 NaN or infinite"):
        v.finite_tensor("W", torch.tensor([1.0, math.nan]))
    with pytest.raises(TypeError, match="W must be a torch tensor"):
        v.finite_tensor("W", [1.0])


def test_float64_tensor():
    assert v.float64_tensor("ns", (n for n in [1, 2])).dtype == torch.float64
    assert v.float64_tensor("ns", np.array([1.0, 2.0])).tolist() == [1.0, 2.0]
    with pytest.raises(TypeError, match="ns must be real numbers"):
        v.float64_tensor("ns", ["a", "b"])
    with pytest.raises(ValueError, match="ns contains 1 NaN"):
        v.float64_tensor("ns", [1.0, math.nan])


def test_model_input():
    weight = torch.zeros(3, 4)
    v.model_input(torch.zeros(5, 4), weight)
    with pytest.raises(TypeError, match=r"x.to\(torch.float32\) or model.to\(torch.float64\)"):
        v.model_input(torch.zeros(5, 4, dtype=torch.float64), weight)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 4\)"):
        v.model_input(torch.zeros(5, 3), weight)
