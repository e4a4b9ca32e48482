"""The grader's side of a check: the canonical check cell runs HERE, on values the student process returns.

The check cell (from the solution notebook, hidden tests included) is executed in the grader's own
interpreter, with the course's check modules as the grader imported them. The names it uses that the
cell does not define (``empirical_loss``) resolve to :class:`StudentFunction` proxies: calling one sends
the arguments to the student process, which calls the student's function there and sends back only the
result, decoded by :func:`.wire.decode` into plain numbers, arrays and tensors. So no student code runs
in this process, and the verdict — the check returning, or raising — is computed where the student
cannot reach.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import re
import sys
import threading
import time
from dataclasses import dataclass

from slt_course_utils.grading import wire
from slt_course_utils.grading.runner import GenArg
from slt_course_utils.grading.sandbox import StudentDied, StudentProcess, StudentTimeout

_REBUILT = ("ValueError", "TypeError", "KeyError", "IndexError", "ZeroDivisionError", "RuntimeError",
            "ArithmeticError", "OverflowError", "AttributeError", "NotImplementedError", "LookupError",
            "FloatingPointError", "RecursionError", "MemoryError", "AssertionError", "NameError")


class StudentError(Exception):
    """An exception the student's function raised, re-created by name (never the student's object)."""


class UnsupportedResult(Exception):
    """The student's function returned something that is not plain data."""


class Opaque:
    """A student variable that is not plain data (stands in for it; equal only to itself)."""

    def __init__(self, name: str, what: str) -> None:
        self.name, self.what = name, what

    def __repr__(self) -> str:
        return f"<{self.name}: {self.what}, which the grader cannot read>"


_classes: dict[str, type] = {}


def rebuild_exception(ename: str, evalue: str) -> BaseException:
    """A fresh exception of the builtin class named ``ename``, or a StudentError subclass with that name."""
    ename = str(ename)[:80]
    if ename in _REBUILT:
        return getattr(builtins, ename)(str(evalue))
    name = re.sub(r"\W", "_", ename) or "Error"
    if name[0].isdigit():
        name = "_" + name
    cls = _classes.get(name)
    if cls is None:
        cls = _classes[name] = type(name, (StudentError,), {})
    return cls(str(evalue))


@dataclass
class Session:
    """A student process with the deadline of the check now running."""

    process: StudentProcess
    deadline: float = 0.0
    timeout: float = 0.0

    def ask(self, message: tuple) -> dict:
        left = self.deadline - time.perf_counter()
        if left <= 0:
            raise StudentTimeout(f"timed out after {self.timeout:.0f} s")
        reply = self.process.request(message, left)
        if reply.status == "timeout":
            raise StudentTimeout(f"timed out after {self.timeout:.0f} s")
        if reply.status == "dead":
            raise StudentDied(reply.body.get("note", ""))
        return reply.body


class StudentFunction:
    """Calls the student's function ``name`` in the student process; returns a decoded copy of the result."""

    def __init__(self, session: Session, name: str) -> None:
        self._session = session
        self.__name__ = self.__qualname__ = name

    def __repr__(self) -> str:
        return f"<student function {self.__name__}>"

    def __call__(self, *args, **kwargs):
        import torch

        gens: dict[object, torch.Generator] = {}

        def send(key, value):
            if isinstance(value, torch.Generator):
                gens[key] = value
                return GenArg(value.get_state())
            return value

        args = tuple(send(i, a) for i, a in enumerate(args))
        kwargs = {k: send(k, v) for k, v in kwargs.items()}
        body = self._session.ask(("call", self.__name__, args, kwargs))
        kind = body.get("t")
        if kind == "raise":
            raise rebuild_exception(body.get("ename", "Exception"), body.get("evalue", ""))
        if kind == "unsupported":
            raise UnsupportedResult(f"it returned {str(body.get('what', 'a value'))[:200]}, which the grader cannot "
                                    "read back: return numbers, strings, lists, tuples, dicts, NumPy arrays or tensors")
        if kind != "return":
            raise StudentDied("it broke the grader's protocol (an unexpected reply)")
        try:
            value = wire.decode(body.get("value"))
            for key, state in body.get("gens", []) or []:
                key = key if isinstance(key, str) else int(key)
                if key in gens:
                    gens[key].set_state(wire.decode(state))
        except (wire.WireError, RuntimeError, TypeError, ValueError) as err:
            raise UnsupportedResult(f"the grader could not read the value it returned ({err})") from None
        return value


class StudentNamespace(dict):
    """The check cell's locals: a name the cell doesn't define is looked up in the student process."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self._session = session

    def __missing__(self, name: str):
        if name in builtins.__dict__ or name.startswith("__"):
            raise KeyError(name)
        body = self._session.ask(("get", name))
        kind = body.get("t")
        if kind == "callable":
            return StudentFunction(self._session, name)
        if kind == "value":
            try:
                return wire.decode(body.get("value"))
            except wire.WireError as err:
                return Opaque(name, str(err))
        if kind == "unsupported":
            return Opaque(name, str(body.get("what", "a value"))[:200])
        raise KeyError(name)


# ---- printing from checks, one buffer per grading thread -------------------------------------


class _ThreadStdout(io.TextIOBase):
    def __init__(self, default) -> None:
        self.default = default
        self.local = threading.local()

    def write(self, text: str) -> int:
        buf = getattr(self.local, "buf", None)
        return buf.write(text) if buf is not None else self.default.write(text)

    def flush(self) -> None:
        if getattr(self.local, "buf", None) is None:
            self.default.flush()


_install_lock = threading.Lock()


@contextlib.contextmanager
def captured_stdout():
    """What this thread prints inside the block (other threads print as usual)."""
    with _install_lock:
        if not isinstance(sys.stdout, _ThreadStdout):
            sys.stdout = _ThreadStdout(sys.stdout)
        router = sys.stdout
    buf = io.StringIO()
    router.local.buf = buf
    try:
        yield buf
    finally:
        router.local.buf = None


@dataclass
class CheckOutcome:
    passed: bool
    message: str
    fatal: str = ""  # "timeout" or "dead" when the student process has to be restarted
    ename: str = ""


def run_check(source: str, grade_id: str, session: Session, timeout: float, preamble: str = "") -> CheckOutcome:
    """Execute the canonical check cell ``source`` (after ``preamble``, the check-module imports) against the
    student process; never raises."""
    session.deadline, session.timeout = time.perf_counter() + timeout, timeout
    namespace = StudentNamespace(session)
    glob = {"__builtins__": builtins, "__name__": "__grader_check__"}
    with captured_stdout() as out:
        try:
            exec(compile(preamble, "<check imports>", "exec"), glob, namespace)  # noqa: S102 - the course's imports
            exec(compile(source, f"<check {grade_id}>", "exec"), glob, namespace)  # noqa: S102 - the solution's cell
        except StudentTimeout as err:
            return CheckOutcome(False, f"the check {err} (an infinite loop, or too slow)", "timeout")
        except StudentDied as err:
            note = f" [{err}]" if str(err) else ""
            return CheckOutcome(False, f"your code ended the process (os._exit, a crash or running out of memory){note}",
                                "dead")
        except Exception as err:  # noqa: BLE001 - a failed check, in any form
            return CheckOutcome(False, str(err), ename=type(err).__name__)
    lines = [line for line in out.getvalue().splitlines() if line.startswith("✔")]
    return CheckOutcome(True, lines[-1] if lines else "passed")
