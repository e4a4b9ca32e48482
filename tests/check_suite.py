"""The three tests every chapter's checks get: pass on the solution, fail on a stub, reject wrong answers."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest

from slt_course_utils.checks import CheckFailure
from slt_course_utils.make_exercises import STUB_MESSAGE

Cases = dict[str, tuple[Callable, dict[str, Callable]]]


def stub(*args, **kwargs):
    """What a learner's function is as handed out (the generated exercise's stub)."""
    raise NotImplementedError(STUB_MESSAGE)


def check_suite(module: ModuleType, cases: Cases) -> tuple[Callable, Callable, Callable]:
    """Tests for ``module``'s checks; ``cases`` maps check name → (solution, {wrong-answer name: fn}).

    Use in a test file as::

        test_passes, test_stub, test_wrong = check_suite(ch00, CASES)
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
    def test_check_rejects_a_plausible_wrong_answer(name, wrong):
        with pytest.raises(CheckFailure) as info:
            getattr(module, name)(cases[name][1][wrong])
        assert not info.value.not_implemented
        message = str(info.value)
        assert any(word in message for word in ("expected", "Hint", "should", "raised")), message

    return test_check_passes_on_the_solution, test_check_fails_on_the_stub, test_check_rejects_a_plausible_wrong_answer
