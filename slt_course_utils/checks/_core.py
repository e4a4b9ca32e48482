"""The check-function framework: clear failures, a helpful "not implemented yet".

A failure says what is wrong — which input, how far off (a relative error to one significant
digit), a hint — and never prints the reference answer. In Jupyter it shows as that message only
(no traceback through this package, no source line of the check); when the learner's own function
raised, the frames of the learner's code are shown so that they can find the bug.
"""

from __future__ import annotations

import functools
import math
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

NOT_IMPLEMENTED = "not implemented yet"


_CHECKS_DIR = Path(__file__).resolve().parent


class CheckFailure(AssertionError):
    """A check did not pass; the message says what is wrong and a hint (never the reference answer)."""

    def __init__(self, message: str, *, not_implemented: bool = False) -> None:
        super().__init__(message)
        self.not_implemented = not_implemented

    def _render_traceback_(self) -> list[str]:
        """What IPython/Jupyter shows for this exception: the message and hint, no check frames.

        If the learner's function raised, its frames outside ``slt_course_utils/checks`` come first.
        """
        lines: list[str] = []
        cause = self.__cause__
        if cause is not None and not isinstance(cause, CheckFailure):
            frames = [f for f in traceback.extract_tb(cause.__traceback__)
                      if not Path(f.filename).resolve().is_relative_to(_CHECKS_DIR)]
            if frames:
                lines.append("Your code raised an error here:")
                lines += "".join(traceback.format_list(frames)).rstrip("\n").split("\n")
                lines.append("")
        first, *rest = str(self).split("\n")
        lines.append(f"\x1b[0;31m✗ {first}\x1b[0m")
        return lines + rest


def _as_array(value: Any, what: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy()
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise CheckFailure(
            f"{what}: expected a number, array or tensor, got {type(value).__name__} ({value!r:.80})."
        ) from err


def as_float(value: Any, what: str) -> float:
    """``float(value)``, or a :class:`CheckFailure` saying a single number was expected."""
    try:
        return float(value)
    except (TypeError, ValueError) as err:
        raise CheckFailure(f"{what}: expected a single number, got {type(value).__name__} ({value!r:.80}).") from err


def _one_digit(x: float) -> str:
    """``x`` to one significant digit: enough to tell near from far, too coarse to give the answer away."""
    return f"{x:.1g}"


def too_large_or_small(got: Any, expected: Any) -> str:
    """'too large', 'too small' or 'wrong': how a learner's exact answer (int, Fraction) misses, without the answer."""
    try:
        return "too large" if got > expected else "too small" if got < expected else "wrong"
    except TypeError:
        return "wrong"


def _short_got(a: np.ndarray) -> str:
    """The learner's own value, briefly (never used for the reference)."""
    if a.size == 1:
        return f"{a.item():.6g}"
    flat = a.ravel()
    body = ", ".join(f"{v:.4g}" for v in flat[:4])
    return f"array of shape {a.shape} [{body}{', ...' if flat.size > 4 else ''}]"


def assert_close(
    got: Any,
    expected: Any,
    *,
    what: str,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    hint: str = "",
) -> None:
    """Raise :class:`CheckFailure` unless ``got`` has ``expected``'s shape and |got − expected| ≤ atol + rtol·|expected|.

    The message names ``what``, the learner's value, the relative error max|got − expected| / max|expected|
    to one significant digit, the tolerance and the hint — never ``expected`` itself.
    """
    g = _as_array(got, what)
    e = _as_array(expected, what)
    hint_txt = f"\nHint: {hint}" if hint else ""
    if g.shape != e.shape:
        raise CheckFailure(
            f"{what}: expected shape {e.shape}, got shape {g.shape}.{hint_txt}"
        )
    if not np.all(np.isfinite(g)):
        bad = int(np.sum(~np.isfinite(g)))
        raise CheckFailure(
            f"{what}: {bad} of {g.size} values are NaN or infinite; all should be finite.{hint_txt}"
        )
    if not np.allclose(g, e, rtol=rtol, atol=atol):
        diff = np.abs(g - e)
        scale = float(np.max(np.abs(e))) if e.size else 0.0
        tolerance = f"tolerance atol={atol:g}, rtol={rtol:g}"
        off = "" if scale == 0 else f"; relative error about {_one_digit(float(np.max(diff)) / scale)}"
        if g.size == 1:
            where = f"your value {_short_got(g)} is not close enough to the reference"
        else:
            outside = ~np.isclose(g, e, rtol=rtol, atol=atol)
            first = tuple(int(i) for i in np.argwhere(outside)[0])
            where = (f"{int(outside.sum())} of {g.size} entries are off (the first at index "
                     f"{first[0] if len(first) == 1 else first}); you returned {_short_got(g)}")
        raise CheckFailure(f"{what}: {where} ({tolerance}{off}).{hint_txt}")


def call_student(fn: Callable[..., Any], *args: Any, what: str | None = None, **kwargs: Any) -> Any:
    """Call the learner's ``fn``; its ``NotImplementedError`` becomes a "not implemented yet" failure."""
    name = what or getattr(fn, "__name__", "your function")
    if not callable(fn):
        raise CheckFailure(
            f"expected a function for {name}, got {type(fn).__name__}. Pass the function "
            f"itself (no parentheses), e.g. check_xxx(my_function)."
        )
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise CheckFailure(
            f"{name} is {NOT_IMPLEMENTED}: it still raises NotImplementedError. Replace the "
            f"`raise NotImplementedError` line with your code and run the cell again.",
            not_implemented=True,
        ) from None
    except CheckFailure:
        raise
    except Exception as err:  # noqa: BLE001 - any learner error becomes a readable failure
        raise CheckFailure(
            f"{name} raised {type(err).__name__}: {err}\n(It was called with {_describe_args(args, kwargs)}.)"
        ) from err


def _copy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.clone()
    return value.copy() if isinstance(value, np.ndarray) else value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and bool(torch.equal(a, b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and bool(np.array_equal(a, b))
    return True


def call_unchanged(fn: Callable[..., Any], *args: Any, what: str, mistake: str, fix: str, **kwargs: Any) -> Any:
    """:func:`call_student` on copies of the tensor/array arguments; a failure if the function changed one in place.

    The notebooks reuse their inputs after a check's demo call, so an in-place change would corrupt later cells
    even when the returned value is right. ``mistake`` and ``fix`` are the chapter's examples for the message.
    """
    passed = [_copy(a) for a in args]
    passed_kw = {k: _copy(v) for k, v in kwargs.items()}
    got = call_student(fn, *passed, what=what, **passed_kw)
    changed = [f"argument {i + 1}" for i, (a, b) in enumerate(zip(args, passed, strict=True)) if not _same(a, b)]
    changed += [f"argument {k!r}" for k in kwargs if not _same(kwargs[k], passed_kw[k])]
    if changed:
        raise CheckFailure(f"{what} changed its {changed[0]} in place (e.g. {mistake}, or an in-place operation on a "
                           "reshape or `.double()` / `np.asarray` of an argument, which may share its memory): it "
                           f"should leave its inputs alone and work on a copy, e.g. {fix}.")
    return got


def _describe_args(args: tuple, kwargs: dict) -> str:
    def one(v: Any) -> str:
        if isinstance(v, torch.Tensor):
            return f"tensor of shape {tuple(v.shape)}, dtype {v.dtype}"
        if isinstance(v, np.ndarray):
            return f"array of shape {v.shape}"
        return repr(v)[:60]

    parts = [one(a) for a in args] + [f"{k}={one(v)}" for k, v in kwargs.items()]
    return ", ".join(parts) if parts else "no arguments"


def exercise_check(func: Callable[..., None]) -> Callable[..., None]:
    """Decorate a check: on success print ``✔ <name> passed``; failures keep their message."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        detail = func(*args, **kwargs)
        name = func.__name__
        print(f"✔ {name} passed" + (f": {detail}" if detail else "."))

    wrapper.__wrapped_check__ = func  # type: ignore[attr-defined]
    return wrapper


def is_close_scalar(a: float, b: float, rtol: float, atol: float = 0.0) -> bool:
    """|a − b| ≤ atol + rtol·|b| for finite floats."""
    return math.isfinite(a) and abs(a - b) <= atol + rtol * abs(b)
