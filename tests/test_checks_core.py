"""The check-function framework."""

import numpy as np
import pytest
import torch

from slt_course_utils.checks import CheckFailure, assert_close, call_student, exercise_check


def test_assert_close_passes_and_reports_differences_without_the_reference():
    assert_close(torch.tensor([1.0, 2.0]), [1.0, 2.0], what="x")
    with pytest.raises(CheckFailure, match=r"(?s)x: 1 of 2 entries are off \(the first at index 1\).*"
                                           r"you returned .*2\.5.*relative error about 0\.2.*Hint: look") as info:
        assert_close([1.0, 2.5], [1.0, 2.123456], what="x", hint="look")
    assert "2.123" not in str(info.value) and "2.12" not in str(info.value)
    with pytest.raises(CheckFailure, match=r"x: your value 0\.75 is not close enough.*relative error about 0\.08") as info:
        assert_close(0.75, 0.6931471805599453, what="x", rtol=1e-6)
    assert "0.693" not in str(info.value)


def test_assert_close_shape_and_non_finite():
    with pytest.raises(CheckFailure, match=r"expected shape \(3,\), got shape \(2,\)"):
        assert_close(np.zeros(2), np.zeros(3), what="v")
    with pytest.raises(CheckFailure, match="NaN or infinite") as info:
        assert_close([np.nan], [1.2345], what="v")
    assert "1.23" not in str(info.value)
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


def test_check_failure_renders_as_its_message_only():
    """IPython's _render_traceback_: the message (first line marked ✗) and nothing of the check's source."""
    try:
        assert_close(2.0, 1.0, what="thing", hint="look again")
    except CheckFailure as err:
        lines = err._render_traceback_()
    assert "✗ thing: your value 2" in lines[0]
    assert lines[-1] == "Hint: look again"
    assert not any("File " in line or "assert_close" in line for line in lines)


def test_check_failure_shows_the_learners_frames_when_their_code_raised():
    def broken(x):
        return {}["key"] + x

    try:
        call_student(broken, 1.0)
    except CheckFailure as err:
        text = "\n".join(err._render_traceback_())
    assert "Your code raised an error here:" in text and 'return {}["key"] + x' in text
    assert "checks/_core.py" not in text and "call_student" not in text


def test_a_wrong_answer_in_jupyter_shows_only_the_message(tmp_path):
    """Run a failing check in a real kernel (nbclient) and inspect the stored error output."""
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    check = (
        "from slt_course_utils.checks import assert_close, exercise_check\n"
        "@exercise_check\n"
        "def check_cov(fn):\n"
        "    s = np.arange(6.0).reshape(3, 2); n = 3\n"
        "    assert_close(fn(s), s.T @ s / n, what='the covariance', hint='divide by n')\n"
    )
    nb = new_notebook(cells=[
        new_code_cell("import numpy as np"),
        new_code_cell(check),
        new_code_cell("check_cov(lambda s: s.T @ s)"),
    ])
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    (error,) = [o for o in nb.cells[2].outputs if o.output_type == "error"]
    shown = "\n".join(error.traceback)
    assert error.ename == "CheckFailure" and "the covariance" in error.evalue
    assert "the covariance: 4 of 4 entries are off" in shown and "Hint: divide by n" in shown
    assert "s.T @ s / n" not in shown and "assert_close(" not in shown, shown
    assert "File " not in shown and "Traceback" not in shown and "_core.py" not in shown, shown
    assert len(error.traceback) <= 3, shown


def _leaky_module():
    """A chapter-like module whose checks print the answer: check_suite must catch every one."""
    import types
    from fractions import Fraction

    module = types.ModuleType("leaky")
    module.assert_close = assert_close

    @exercise_check
    def check_lambda(fn):
        got, expected = call_student(fn, 2), Fraction(3, 4)
        if got != expected:
            raise CheckFailure(f"λ: expected {expected}, got {got}.")

    @exercise_check
    def check_value(fn):
        got = call_student(fn, 2.0)
        if abs(got - 0.6931471805599453) > 1e-9:
            raise CheckFailure(f"log 2: expected {0.6931471805599453:.4f}, got {got:.4f}.")

    @exercise_check
    def check_honest(fn):
        module.assert_close(call_student(fn, 2.0), 1.2345678, what="f(2)", hint="think")

    module.check_lambda, module.check_value, module.check_honest = check_lambda, check_value, check_honest
    return module


def test_check_suite_catches_a_message_that_gives_the_answer():
    from fractions import Fraction

    from .check_suite import check_suite

    cases = {
        "check_lambda": (lambda k: Fraction(3, 4), {"max": lambda k: Fraction(1, 2)}),
        "check_value": (lambda x: 0.6931471805599453, {"log10": lambda x: 0.30103}),
        "check_honest": (lambda x: 1.2345678, {"off": lambda x: 1.3}),
    }
    _, _, test_wrong = check_suite(_leaky_module(), cases)
    with pytest.MonkeyPatch.context() as mp:
        with pytest.raises(AssertionError, match=r"check_lambda prints the reference answer \(3/4\)"):
            test_wrong("check_lambda", "max", mp)
        with pytest.raises(AssertionError, match=r"check_value prints the reference answer \(0\.6931\)"):
            test_wrong("check_value", "log10", mp)
        test_wrong("check_honest", "off", mp)  # assert_close's message passes


def test_leak_detection_matches_whole_numbers_only():
    from .check_suite import leaked

    assert leaked("expected 0.25, got 0.5", [0.25], [0.5]) == ["0.25"]
    assert leaked("n = 10.25 and x = -0.25", [0.25], []) == []  # part of another number, or the learner's sign
    assert leaked("you returned 0.25", [0.25], [0.25]) == []  # the learner's own value
    assert leaked("for n = 3: expected 3", [3], [], inputs=("for n = 3",)) == ["3"]
