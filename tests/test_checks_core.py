"""The check-function framework."""

import numpy as np
import pytest
import torch

from slt_course_utils.checks import CheckFailure, assert_close, call_student, exercise_check


def test_assert_close_passes_and_reports_differences():
    assert_close(torch.tensor([1.0, 2.0]), [1.0, 2.0], what="x")
    with pytest.raises(CheckFailure, match=r"(?s)x: expected .*got .*largest difference.*Hint: look"):
        assert_close([1.0, 2.5], [1.0, 2.0], what="x", hint="look")


def test_assert_close_shape_and_non_finite():
    with pytest.raises(CheckFailure, match=r"expected shape \(3,\), got shape \(2,\)"):
        assert_close(np.zeros(2), np.zeros(3), what="v")
    with pytest.raises(CheckFailure, match="NaN or infinite"):
        assert_close([np.nan], [1.0], what="v")
    with pytest.raises(CheckFailure, match="expected a number"):
        assert_close("abc", 1.0, what="v")


def test_call_student_turns_not_implemented_into_clear_failure():
    def stub(x):
        raise NotImplementedError

    with pytest.raises(CheckFailure, match="not implemented yet") as info:
        call_student(stub, 1)
    assert info.value.not_implemented


def test_call_student_reports_other_errors_with_arguments():
    def broken(x):
        return {}["key"] + x

    with pytest.raises(CheckFailure, match=r"(?s)broken raised KeyError.*tensor of shape \(2,\)") as info:
        call_student(broken, torch.zeros(2))
    assert not info.value.not_implemented


def test_call_student_rejects_non_callables():
    with pytest.raises(CheckFailure, match="expected a function"):
        call_student(3.0)


def test_exercise_check_prints_success(capsys):
    @exercise_check
    def check_thing(value):
        assert_close(value, 1.0, what="thing")
        return "all good"

    check_thing(1.0)
    assert capsys.readouterr().out.strip() == "✔ check_thing passed: all good"
    with pytest.raises(AssertionError):
        check_thing(2.0)
