"""Check functions for the exercises, one module per chapter (``ch00``, ``ch01``, ...).

Every check is called on the learner's function, right under the exercise::

    from slt_course_utils.checks import ch00
    ch00.check_empirical_loss(empirical_loss)

It prints one short success line, or raises :class:`CheckFailure` (an
``AssertionError``) whose message says what is wrong and gives a hint, never the reference answer;
in Jupyter only that message is shown.
"""

from slt_course_utils.checks._core import (
    CheckFailure,
    as_float,
    assert_close,
    call_student,
    exercise_check,
)

__all__ = ["CheckFailure", "as_float", "assert_close", "call_student", "exercise_check"]
