"""The four tests every chapter's checks get: pass on the solution, fail on a stub, reject wrong
answers, and never print the reference answer in a failure message."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterator
from fractions import Fraction
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

from slt_course_utils.checks import CheckFailure
from slt_course_utils.make_exercises import STUB_MESSAGE

Cases = dict[str, tuple[Callable, dict[str, Callable]]]
# Words a failure message uses to say what is wrong (one of them must appear).
EXPLAINS = ("expected", "Hint", "should", "raised", "not close", "are off")


def stub(*args, **kwargs):
    """What a learner's function is as handed out (the generated exercise's stub)."""
    raise NotImplementedError(STUB_MESSAGE)


def _numbers(value: Any, limit: int = 10_000) -> Iterator[Fraction | float]:
    """Every number inside ``value`` (nested tuples, lists, dicts, tensors, arrays), at most ``limit``."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, Fraction | int):
        yield Fraction(value)
    elif isinstance(value, float | np.floating | np.integer):
        yield float(value)
    elif isinstance(value, torch.Tensor):
        if value.dtype != torch.bool and value.numel() <= limit:
            yield from (float(v) for v in value.detach().cpu().double().flatten().tolist())
    elif isinstance(value, np.ndarray):
        if value.dtype != bool and value.size <= limit:
            yield from (float(v) for v in value.astype(float).ravel())
    elif isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v, limit)
    elif isinstance(value, tuple | list):
        for v in value:
            yield from _numbers(v, limit)
    elif hasattr(value, "__dict__") and not callable(value):  # small result records (dataclasses)
        for v in vars(value).values():
            yield from _numbers(v, limit)


def spellings(x: Fraction | float) -> set[str]:
    """How a message could print ``x``: repr, str of a Fraction, and 3–6 significant digits."""
    if isinstance(x, Fraction):
        if x.denominator != 1:
            return {f"{x.numerator}/{x.denominator}"} | spellings(float(x))
        return {str(x.numerator)}
    if not math.isfinite(x):
        return set()
    if x == int(x) and abs(x) < 1e6:
        return {str(int(x)), f"{x:.1f}"}
    return {repr(x), f"{x:.6g}", f"{x:.5g}", f"{x:.4g}", f"{x:.3g}", f"{x:.4f}", f"{x:.3f}"}


def leaked(message: str, reference: list, learner: list, inputs: tuple[str, ...] = ()) -> list[str]:
    """Spellings of reference numbers that appear in ``message`` as whole numbers (not digits of
    a longer number) and are not also spellings of one of the learner's own numbers.

    Not searched, because they name the input (which may share numbers with the answer) or are
    coarse by design: the text before the first ": " (house style "input: what is wrong"), the
    ``inputs`` texts (assert_close's ``what`` and ``hint``), a static "Hint: …" paragraph (it teaches the
    method and may name exponents or definitions that share digits with an answer; it is written once
    per check, not computed from the reference), assert_close's one-digit relative error and its entry index."""
    message = message.split("\nHint:", 1)[0]
    first, _, rest = message.partition("\n")
    if ": " in first:  # the house style "what (the input): what is wrong": the input is not the answer
        first = first.split(": ", 1)[1]
    message = f"{first}\n{rest}"
    for text in inputs:
        message = message.replace(text, "")
    message = re.sub(r"relative error about \S+|at index \([\d, ]*\)|at index \d+", "", message)
    mine = {s for x in learner for s in spellings(x)}
    found = []
    for x in reference:
        for s in spellings(x) - mine:
            if re.search(rf"(?<![\w.\-−]){re.escape(s)}(?![\w]|\.\d)", message):
                found.append(s)
    return sorted(set(found))


class _Recorder:
    """Wraps a check module's ``assert_close`` and a learner function to collect the numbers seen."""

    def __init__(self) -> None:
        self.reference: list = []
        self.learner: list = []
        self.calls: list[tuple[tuple, dict]] = []
        self.inputs: list[str] = []

    def assert_close(self, original: Callable) -> Callable:
        @functools.wraps(original)
        def recording(got, expected, **kwargs):
            self.reference += list(_numbers(expected))
            self.learner += list(_numbers(got))  # may be derived from the learner's output by the check
            self.inputs += [str(kwargs.get("what", "")), str(kwargs.get("hint", ""))]
            return original(got, expected, **kwargs)

        return recording

    def learner_fn(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def recording(*args, **kwargs):
            self.calls.append((args, kwargs))
            out = fn(*args, **kwargs)
            self.learner += list(_numbers(out))
            return out

        return recording


def check_suite(module: ModuleType, cases: Cases) -> tuple[Callable, Callable, Callable]:
    """Tests for ``module``'s checks; ``cases`` maps check name → (solution, {wrong-answer name: fn}).

    Use in a test file as::

        test_passes, test_stub, test_wrong = check_suite(ch00, CASES)

    The wrong-answer test also asserts that the failure message does not print the reference
    answer: neither an ``expected`` value the check passed to ``assert_close`` nor what the
    solution returns on the inputs the wrong answer was called with.
    """
    names = sorted(cases)
    wrong_pairs = [(name, wrong) for name in names for wrong in sorted(cases[name][1])]

    @pytest.mark.parametrize("name", names)
    def test_check_passes_on_the_solution(name, capsys):
        getattr(module, name)(cases[name][0])
        assert "passed" in capsys.readouterr().out

    @pytest.mark.parametrize("name", names)
    def test_check_fails_on_the_stub(name):
        with pytest.raises(CheckFailure, match="not implemented yet") as info:
            getattr(module, name)(stub)
        assert info.value.not_implemented

    @pytest.mark.parametrize(("name", "wrong"), wrong_pairs)
    def test_check_rejects_a_plausible_wrong_answer_without_giving_the_answer(name, wrong, monkeypatch):
        recorder = _Recorder()
        if hasattr(module, "assert_close"):
            monkeypatch.setattr(module, "assert_close", recorder.assert_close(module.assert_close))
        with pytest.raises(CheckFailure) as info:
            getattr(module, name)(recorder.learner_fn(cases[name][1][wrong]))
        assert not info.value.not_implemented
        message = str(info.value)
        assert any(word in message for word in EXPLAINS), message
        # what the solution answers on the inputs the wrong answer saw (the last call is the one that failed)
        if recorder.calls:
            args, kwargs = recorder.calls[-1]
            try:
                recorder.reference += list(_numbers(cases[name][0](*args, **kwargs)))
            except Exception:  # noqa: BLE001 - e.g. a generator the wrong answer used up; assert_close's values remain
                pass
        leaks = leaked(message, recorder.reference, recorder.learner, tuple(recorder.inputs))
        assert not leaks, f"{name} prints the reference answer ({', '.join(leaks)}) in its failure message:\n{message}"

    return (
        test_check_passes_on_the_solution,
        test_check_fails_on_the_stub,
        test_check_rejects_a_plausible_wrong_answer_without_giving_the_answer,
    )
