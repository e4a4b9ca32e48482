"""The student side: runs inside the sandbox, in a plain ``python -I -S`` (no IPython, no site).

Started by :class:`slt_course_utils.grading.student.StudentProcess`. Requests arrive as pickles on
stdin (from the trusted grader); replies leave as JSON frames on file descriptor 3. The student's cells
run in one namespace, one by one, each in its own ``try`` (``exit()``, ``sys.exit`` and errors are
caught and blamed on their cell). Then the grader calls the student's functions by name; only the
*results* go back, as plain data (see :mod:`.wire`). Nothing here decides a verdict: the checks run in
the grader, on the returned values, so whatever student code does to this process (patching NumPy,
``sys.path``, this loop) can change only the values it returns.
"""

from __future__ import annotations

import builtins
import os
import pickle
import resource
import sys
import traceback

REQUESTS = 0
REPLIES = 3  # set from argv: the write end of the reply pipe
MiB = 1024 * 1024


class GenArg:
    """A ``torch.Generator`` argument, sent as its state; the new state is sent back after the call."""

    def __init__(self, state) -> None:
        self.state = state


def _vm_size() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _limit(memory_mb: int, file_mb: int, processes: int) -> None:
    """Cap the address space at what is mapped now (Python, NumPy, torch) plus ``memory_mb``; files,
    processes (when this uid is the sandbox's own), core dumps."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if processes > 0:
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    if file_mb > 0:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_mb * MiB, file_mb * MiB))
    if memory_mb > 0:
        limit = _vm_size() + memory_mb * MiB
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _reply(obj: dict) -> None:
    from slt_course_utils.grading import wire

    wire.write_frame(REPLIES, wire.dumps_reply(obj))


def _error_fields(err: BaseException) -> dict:
    return {"ename": type(err).__name__[:80], "evalue": str(err)[:2000]}


def _run_cell(ns: dict, index: int, source: str) -> dict:
    try:
        code = compile(source, f"<cell {index + 1}>", "exec")
        exec(code, ns)  # noqa: S102 - the student's own cell, in the sandbox
    except SystemExit as err:
        return {"t": "cell", "status": "exit", "ename": "SystemExit", "evalue": str(err.code)[:200]}
    except KeyboardInterrupt as err:
        return {"t": "cell", "status": "error", **_error_fields(err)}
    except BaseException as err:  # noqa: BLE001 - any student error is reported, the next cell runs
        fields = _error_fields(err)
        if isinstance(err, SyntaxError):
            fields["evalue"] = f"{err.msg} (line {err.lineno})"
        return {"t": "cell", "status": "error", **fields,
                "trace": "".join(traceback.format_exception_only(type(err), err))[-500:]}
    return {"t": "cell", "status": "ok"}


def _call(ns: dict, name: str, args: tuple, kwargs: dict) -> dict:
    import torch

    from slt_course_utils.grading import wire

    if name not in ns:
        return {"t": "raise", "ename": "NameError", "evalue": f"name '{name}' is not defined"}
    gens: list[tuple[str, torch.Generator]] = []

    def restore(key, value):
        if isinstance(value, GenArg):
            gen = torch.Generator()
            gen.set_state(value.state)
            gens.append((key, gen))
            return gen
        return value

    args = tuple(restore(i, a) for i, a in enumerate(args))
    kwargs = {k: restore(k, v) for k, v in kwargs.items()}
    try:
        value = ns[name](*args, **kwargs)
    except SystemExit as err:
        return {"t": "raise", "ename": "SystemExit", "evalue": f"exit() was called ({err.code})"}
    except BaseException as err:  # noqa: BLE001
        return {"t": "raise", **_error_fields(err)}
    try:
        encoded = wire.encode(value)
    except wire.WireError as err:
        return {"t": "unsupported", "what": str(err)[:200]}
    except BaseException as err:  # noqa: BLE001 - a value whose conversion raises
        return {"t": "unsupported", "what": f"{type(value).__name__} ({type(err).__name__} while converting)"}
    states = [[k if isinstance(k, str) else int(k), wire.encode(g.get_state())] for k, g in gens]
    return {"t": "return", "value": encoded, "gens": states}


def _lookup(ns: dict, name: str) -> dict:
    from slt_course_utils.grading import wire

    if name not in ns:
        return {"t": "missing"}
    value = ns[name]
    if callable(value):
        return {"t": "callable"}
    try:
        return {"t": "value", "value": wire.encode(value)}
    except Exception as err:  # noqa: BLE001
        return {"t": "unsupported", "what": str(err)[:200]}


def main() -> None:
    global REPLIES
    memory_mb, file_mb, REPLIES, processes = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    # The requests move off stdin, which becomes /dev/null: input() in a cell gets EOFError at once.
    requests = os.fdopen(os.dup(REQUESTS), "rb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, REQUESTS)
    os.close(devnull)
    import numpy  # noqa: F401 - mapped before the limit is measured
    import torch

    torch.set_num_threads(1)
    from slt_course_utils.grading import wire

    _limit(memory_mb, file_mb, processes)
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True, write_through=True)

    def _quit(code=None):
        raise SystemExit(code)

    builtins.exit = builtins.quit = _quit  # as site.py would (-S skips it)
    ns: dict = {"__name__": "__main__", "__builtins__": builtins, "display": lambda *a, **k: None}
    main_module = type(sys)("__main__")
    main_module.__dict__.update(ns)
    ns = main_module.__dict__
    sys.modules["__main__"] = main_module
    _reply({"t": "ready"})
    while True:
        try:
            frame = wire.read_frame(requests.fileno())
        except EOFError:
            return
        try:
            request = pickle.loads(frame)
        except Exception as err:  # noqa: BLE001 - e.g. an argument whose module this side lacks
            _reply({"t": "raise", "ename": "RuntimeError",
                    "evalue": f"the grader could not pass the arguments ({type(err).__name__}: {str(err)[:200]})"})
            continue
        kind = request[0]
        if kind == "cell":
            _reply(_run_cell(ns, request[1], request[2]))
        elif kind == "call":
            _reply(_call(ns, request[1], request[2], request[3]))
        elif kind == "get":
            _reply(_lookup(ns, request[1]))
        elif kind == "bye":
            return


if __name__ == "__main__":
    main()
