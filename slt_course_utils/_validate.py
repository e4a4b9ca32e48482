"""Input validators shared by the package: one sentence per failure, saying what is wrong and what to pass.

Scalars may be Python numbers, NumPy scalars or 0-d torch tensors (real, not bool); integers
must be integral types (``3.0`` is a float, not a count). A wrong *type* raises
:class:`InputTypeError`, which is both a ``TypeError`` and a ``ValueError`` (as NumPy's
``AxisError`` is both ``ValueError`` and ``IndexError``), so callers catching either see it.
A wrong *value* (NaN, ∞, out of range) raises ``ValueError``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import torch
from torch import Tensor

__all__ = [
    "InputTypeError",
    "finite_float",
    "finite_tensor",
    "float64_tensor",
    "int_in_range",
    "int_sequence",
    "model_input",
    "nonnegative_float",
    "nonnegative_int",
    "positive_float",
    "positive_int",
    "real_scalar",
]


class InputTypeError(TypeError, ValueError):
    """An argument of the wrong type (e.g. a float where a count is needed)."""


def _describe(x: object) -> str:
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


def real_scalar(name: str, x: object) -> float:
    """x as a Python float: accepts int, float, NumPy real scalars and 0-d real torch tensors (not bool)."""
    if isinstance(x, Tensor):
        if x.numel() != 1 or x.ndim > 1 or x.dtype == torch.bool or x.is_complex():
            raise InputTypeError(f"{name} must be a real number, got a tensor of shape {tuple(x.shape)} "
                                 f"and dtype {x.dtype}; pass a Python float.")
        return float(x.detach().cpu().reshape(()).item())
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise InputTypeError(f"{name} must be a real number, got {type(x).__name__} {_describe(x)}.")
    return float(x)


def finite_float(name: str, x: object) -> float:
    """A finite real number (not NaN, not ±∞)."""
    v = real_scalar(name, x)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {v!r}.")
    return v


def positive_float(name: str, x: object, *, allow_inf: bool = False) -> float:
    """A real number > 0 (and finite unless ``allow_inf``)."""
    v = real_scalar(name, x)
    if math.isnan(v) or not v > 0 or (v == math.inf and not allow_inf):
        raise ValueError(f"{name} must be positive{'' if allow_inf else ' and finite'}, got {v!r}.")
    return v


def nonnegative_float(name: str, x: object) -> float:
    """A finite real number ≥ 0."""
    v = real_scalar(name, x)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be finite and ≥ 0, got {v!r}.")
    return v


def _integer(name: str, x: object) -> int:
    if isinstance(x, Tensor):
        if x.numel() != 1 or x.ndim > 1 or x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
            raise InputTypeError(f"{name} must be an integer, got a tensor of shape {tuple(x.shape)} and dtype "
                                 f"{x.dtype}; pass a Python int.")
        return int(x.reshape(()).item())
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        hint = f" (use int({x!r}) if that is what you mean)" if isinstance(x, float) and float(x).is_integer() else ""
        raise InputTypeError(f"{name} must be an integer, got {type(x).__name__} {_describe(x)}{hint}.")
    return int(x)


def int_in_range(name: str, x: object, low: int | None = None, high: int | None = None) -> int:
    """An integer with low ≤ x ≤ high (either bound may be None)."""
    v = _integer(name, x)
    if high is None and low is not None and v < low:
        what = "a non-negative integer" if low == 0 else "a positive integer" if low == 1 else f"an integer ≥ {low}"
        raise ValueError(f"{name} must be {what}, got {v}.")
    if (low is not None and v < low) or (high is not None and v > high):
        lo = "−∞" if low is None else str(low)
        hi = "∞" if high is None else str(high)
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {v}.")
    return v


def positive_int(name: str, x: object) -> int:
    """An integer ≥ 1."""
    v = _integer(name, x)
    if v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v}.")
    return v


def nonnegative_int(name: str, x: object) -> int:
    """An integer ≥ 0."""
    v = _integer(name, x)
    if v < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {v}.")
    return v


def int_sequence(name: str, seq: Iterable[object], *, low: int = 1, min_len: int = 1) -> list[int]:
    """A list of integers ≥ ``low`` with at least ``min_len`` entries; reads an iterator exactly once."""
    if isinstance(seq, (str, bytes)) or not isinstance(seq, Iterable):
        raise InputTypeError(f"{name} must be a sequence of integers, got {type(seq).__name__} {_describe(seq)}.")
    items = list(seq.tolist() if isinstance(seq, Tensor) else seq)
    if len(items) < min_len or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in items):
        if any(isinstance(v, float) for v in items):
            raise InputTypeError(f"{name} must be integers, got {items!r}: round them yourself if that is intended.")
        if len(items) < min_len:
            raise ValueError(f"{name} must have at least {min_len} entries, got {items!r}.")
        raise InputTypeError(f"{name} must be integers, got {items!r}.")
    out = [int(v) for v in items]
    if any(v < low for v in out):
        raise ValueError(f"{name} must be integers ≥ {low}, got {out!r}.")
    return out


def finite_tensor(name: str, t: Tensor) -> Tensor:
    """t itself, after checking it is a real tensor with no NaN or ±∞ entries."""
    if not isinstance(t, Tensor):
        raise InputTypeError(f"{name} must be a torch tensor, got {type(t).__name__}.")
    if t.is_complex() or t.dtype == torch.bool:
        raise InputTypeError(f"{name} must be a real tensor, got dtype {t.dtype}.")
    if t.is_floating_point() and not torch.isfinite(t).all():
        bad = int((~torch.isfinite(t)).sum())
        raise ValueError(f"{name} contains {bad} NaN or infinite entries; every entry must be finite.")
    return t


def float64_tensor(name: str, x: object) -> Tensor:
    """x (a tensor, array, sequence or iterator — read once) as a float64 tensor with finite entries."""
    if not isinstance(x, (Tensor, str, bytes)) and isinstance(x, Iterable) and not hasattr(x, "__len__"):
        x = list(x)
    try:
        t = torch.as_tensor(x, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise InputTypeError(f"{name} must be real numbers (a tensor, array or list), got {_describe(x)} ({err}).") from None
    return finite_tensor(name, t)


def model_input(x: object, weight: Tensor) -> None:
    """x must be a tensor of shape (..., weight.shape[-1]) in weight's dtype: a clear error instead of torch's."""
    if not isinstance(x, Tensor) or x.ndim < 1 or x.shape[-1] != weight.shape[-1]:
        raise ValueError(f"the input must be a tensor of shape (..., {weight.shape[-1]}), got {_describe(getattr(x, 'shape', x))}.")
    if x.dtype != weight.dtype:
        raise InputTypeError(f"the input has dtype {x.dtype} but the model's parameters are {weight.dtype}: convert one "
                             f"(x.to({weight.dtype}) or model.to({x.dtype})).")
