"""Grade student notebooks against the course's own checks (instructors' tool).

    python -m slt_course_utils.grade SUBMISSIONS... --out DIR [--chapter NN_slug]
        [--cell-timeout 60] [--total-timeout 600] [--jobs 2] [--memory-limit-mb 2048]

A submission is a notebook file; a folder is graded notebook by notebook, either flat
(``DIR/<student>.ipynb``: the student is the file stem) or one folder per student
(``DIR/<student>/.../<notebook>.ipynb``: the student is the first folder under ``DIR``).

How one notebook is graded:

1. The chapter is ``--chapter`` if given, else the chapter whose ``NN_slug`` the file name
   contains, else the chapter its content points to (check grade ids, ``chNN`` check-module
   imports, the exercise function names). If the name and the content disagree the notebook
   is reported as the wrong chapter (and graded against the chapter asked for, so it scores 0).
2. The exercises — grade id, points, check call — are read from the chapter's SOLUTION
   notebook (``solutions/NN_slug.ipynb``), never from the student's notebook: editing or
   deleting a check cell gains nothing.
3. The student's code cells run in a fresh kernel in a private temporary folder, except
   check cells (nbgrader ``grade: true``, or any cell that calls ``check_...(``). A cell that
   raises does not stop the rest. A cell that runs past ``--cell-timeout``, kills the kernel
   (``os._exit``, a segfault) or runs out of memory (the kernel's data memory is capped
   at ``--memory-limit-mb`` with ``RLIMIT_DATA``) is recorded, the kernel is restarted and the
   cells before it are replayed without it, so later exercises can still pass.
4. The canonical check calls then run in that kernel (the course's check modules freshly
   re-imported), each one recorded as passed or failed with its message.

Outputs in ``--out``: ``gradebook.csv`` and ``gradebook.json`` (one row per student and
exercise: student, chapter, exercise, passed, points, max_points, message, runtime_s),
``issues.csv`` (what went wrong in each notebook outside the checks) and
``feedback/<student>.md``. A summary is printed. Exit status 0 once everything is graded,
whatever the students' scores; 2 for a usage error.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import queue
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from slt_course_utils.progress import progress

try:
    import resource
except ImportError:  # Windows: no memory limit
    resource = None

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS_DIR = PACKAGE_ROOT / "solutions"
CHAPTER_NAME = re.compile(r"(\d\d)_[a-z0-9_]*[a-z0-9]")
CHECK_CALL = re.compile(r"(?<!def )\bcheck_\w*\s*\(")
CHECK_IMPORT = re.compile(r"^\s*(from\s+slt_course_utils\.checks\s+import\s+.+|import\s+slt_course_utils\.checks\b.*)$", re.M)
CHECK_MODULE_REF = re.compile(r"\bch(\d\d)\s*\.\s*check_|slt_course_utils\.checks\s+import\s+ch(\d\d)\b|slt_course_utils\.checks\.ch(\d\d)\b")
GRADE_ID_CHAPTER = re.compile(r"^ch(\d\d)-")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
MAX_OUTPUT_CHARS = 20_000
MAX_MESSAGE_CHARS = 2_000
FIELDS = ["student", "chapter", "exercise", "passed", "points", "max_points", "message", "runtime_s"]


# --------------------------------------------------------------------------------------------
# The course: chapters and their exercises, from the solution notebooks
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exercise:
    grade_id: str
    points: float
    source: str  # the canonical check call (the solution's check cell, hidden tests included)


@dataclass
class Chapter:
    name: str  # NN_slug
    number: str  # NN
    exercises: list[Exercise]
    check_imports: list[str]  # import lines of the check modules, e.g. "from slt_course_utils.checks import ch00"
    function_names: set[str] = field(default_factory=set)  # functions the solution cells define

    @property
    def max_points(self) -> float:
        return sum(e.points for e in self.exercises)


def load_chapter(path: Path) -> Chapter:
    """A chapter's exercises from its solution notebook (grade cells with points, in order)."""
    nb = nbformat.read(path, as_version=4)
    exercises, imports, names = [], [], set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            names.update(re.findall(r"^def\s+(\w+)\s*\(", cell.source, re.M))
        if meta.get("grade"):
            if "grade_id" not in meta or "points" not in meta:
                raise ValueError(f"{path.name}: a grade cell lacks grade_id or points: {cell.source[:60]!r}")
            exercises.append(Exercise(meta["grade_id"], float(meta["points"]), cell.source))
            imports += [m.group(1).strip() for m in CHECK_IMPORT.finditer(cell.source)]
    number = path.name[:2]
    if not imports and (PACKAGE_ROOT / "slt_course_utils" / "checks" / f"ch{number}.py").exists():
        imports = [f"from slt_course_utils.checks import ch{number}"]
    return Chapter(path.stem, number, exercises, list(dict.fromkeys(imports)), names)


def load_chapters(solutions_dir: Path = SOLUTIONS_DIR) -> dict[str, Chapter]:
    """Every chapter with a solution notebook ``NN_slug.ipynb`` in ``solutions_dir``."""
    chapters = {}
    for path in sorted(solutions_dir.glob("[0-9][0-9]_*.ipynb")):
        chapters[path.stem] = load_chapter(path)
    return chapters


def chapter_from_name(path: Path, chapters: dict[str, Chapter]) -> str | None:
    """The chapter whose ``NN_slug`` the file name contains (longest match), if any."""
    hits = [name for name in chapters if name in path.stem]
    return max(hits, key=len) if hits else None


def chapter_from_content(nb, chapters: dict[str, Chapter]) -> str | None:
    """The chapter a notebook's content points to: grade ids, check-module references, function names."""
    votes: dict[str, float] = {}
    by_number = {c.number: name for name, c in chapters.items()}

    def vote(number: str | None, weight: float) -> None:
        if number in by_number:
            votes[by_number[number]] = votes.get(by_number[number], 0.0) + weight

    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        m = GRADE_ID_CHAPTER.match(str(meta.get("grade_id", "")))
        if m:
            vote(m.group(1), 2.0)
        source = cell.get("source", "")
        if not isinstance(source, str):
            continue
        for m in CHECK_MODULE_REF.finditer(source):
            vote(next(g for g in m.groups() if g), 2.0)
        defined = set(re.findall(r"^def\s+(\w+)\s*\(", source, re.M))
        for name, chapter in chapters.items():
            votes[name] = votes.get(name, 0.0) + len(defined & chapter.function_names)
    votes = {k: v for k, v in votes.items() if v > 0}
    return max(votes, key=votes.get) if votes else None


# --------------------------------------------------------------------------------------------
# A kernel that survives its student: timeouts, deaths and memory, with restarts
# --------------------------------------------------------------------------------------------


@dataclass
class ExecResult:
    status: str  # "ok", "error", "timeout", "dead"
    output: str = ""
    ename: str = ""
    evalue: str = ""
    elapsed: float = 0.0

    @property
    def fatal(self) -> bool:
        """The kernel can't be trusted afterwards: restart it (and replay the cells before)."""
        return self.status in ("timeout", "dead") or self.ename == "MemoryError"


class KernelSession:
    """One Jupyter kernel for one submission, in ``cwd``, with an address-space limit."""

    def __init__(self, cwd: Path, *, kernel_name: str = "python3", memory_limit_mb: int | None = 2048,
                 startup_timeout: float = 60.0) -> None:
        self.cwd = cwd
        self.kernel_name = kernel_name
        self.memory_limit_mb = memory_limit_mb
        self.startup_timeout = startup_timeout
        self.km = None
        self.kc = None
        self.starts = 0
        self.log_path = cwd.parent / "kernel.log"

    def _env(self) -> dict[str, str]:
        env = os.environ.copy()
        path = env.get("PYTHONPATH", "")
        env["PYTHONPATH"] = str(PACKAGE_ROOT) + (os.pathsep + path if path else "")
        # One thread per kernel: --jobs kernels share the cores, and few threads keep the
        # address space (which the memory limit caps) small.
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
            env[var] = "1"
        env["MALLOC_ARENA_MAX"] = "2"
        env["SLT_PROGRESS"] = "0"
        env["MPLBACKEND"] = "Agg"
        env.pop("JPY_SESSION_NAME", None)
        return env

    def start(self) -> None:
        from jupyter_client import KernelManager

        self.shutdown()
        self.km = KernelManager(kernel_name=self.kernel_name)
        with open(self.log_path, "ab") as log:
            self.km.start_kernel(cwd=str(self.cwd), env=self._env(), stdout=log, stderr=log)
        self.starts += 1
        self._limit_memory()
        self.kc = self.km.client()
        self.kc.start_channels()
        try:
            self.kc.wait_for_ready(timeout=self.startup_timeout)
        except RuntimeError as err:
            raise RuntimeError(f"the kernel did not start: {err}") from err

    def _limit_memory(self) -> None:
        if not self.memory_limit_mb or not hasattr(resource, "prlimit"):
            return
        pid = getattr(self.km.provisioner, "pid", None)
        if pid is None:
            return
        # RLIMIT_DATA caps the kernel's private writable memory: heap and anonymous mappings
        # (Python objects, NumPy arrays, torch tensors), which is what a runaway cell eats;
        # unlike RLIMIT_AS it does not count shared libraries or untouched reservations, so
        # the limit means about what it says (a kernel with torch loaded uses ~400 MB of it).
        limit = int(self.memory_limit_mb) * 1024 * 1024
        resource.prlimit(pid, resource.RLIMIT_DATA, (limit, limit))

    def death_note(self) -> str:
        """How the kernel process ended: "exit status 3", "signal SIGSEGV", or ""."""
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        try:
            code = process.poll() if process is not None else None
        except Exception:  # noqa: BLE001
            return ""
        if code is None:
            return ""
        if code < 0:
            try:
                return f"killed by signal {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit status {code}"

    def shutdown(self) -> None:
        if self.kc is not None:
            try:
                self.kc.stop_channels()
            except Exception:  # noqa: BLE001
                pass
            self.kc = None
        if self.km is not None:
            try:
                self.km.shutdown_kernel(now=True)
            except Exception:  # noqa: BLE001
                pass
            self.km = None

    def execute(self, code: str, timeout: float) -> ExecResult:
        """Run ``code``; wait at most ``timeout`` seconds for it to finish."""
        start = time.perf_counter()
        msg_id = self.kc.execute(code, store_history=True, allow_stdin=False, stop_on_error=False)
        deadline = start + max(timeout, 0.0)
        out: list[str] = []
        size = 0
        result = ExecResult("ok")
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                result.status = "timeout"
                break
            try:
                msg = self.kc.get_iopub_msg(timeout=min(0.5, remaining))
            except queue.Empty:
                if not self.km.is_alive():
                    result.status = "dead"
                    break
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and size < MAX_OUTPUT_CHARS:
                out.append(content.get("text", ""))
                size += len(out[-1])
            elif kind == "error":
                result.status = "error"
                result.ename = content.get("ename", "")
                result.evalue = content.get("evalue", "")
            elif kind == "status" and content.get("execution_state") == "idle":
                break
        if result.status == "dead":
            result.evalue = self.death_note()
        result.output = ANSI.sub("", "".join(out))[:MAX_OUTPUT_CHARS]
        result.elapsed = time.perf_counter() - start
        return result


# --------------------------------------------------------------------------------------------
# Grading one submission
# --------------------------------------------------------------------------------------------


@dataclass
class Submission:
    student: str
    path: Path


@dataclass
class Row:
    student: str
    chapter: str
    exercise: str
    passed: bool
    points: float
    max_points: float
    message: str
    runtime_s: float


@dataclass
class Result:
    student: str
    path: str
    chapter: str
    rows: list[Row]
    issues: list[str]
    runtime_s: float

    @property
    def points(self) -> float:
        return sum(r.points for r in self.rows)

    @property
    def max_points(self) -> float:
        return sum(r.max_points for r in self.rows)


@dataclass
class Options:
    chapter: str | None = None
    cell_timeout: float = 60.0
    total_timeout: float = 600.0
    memory_limit_mb: int | None = 2048
    kernel_name: str = "python3"


def _short(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(res: ExecResult, timeout: float, memory_limit_mb: int | None, restarted: bool = True) -> str:
    """What went wrong, for a student; ``restarted`` says whether grading went on in a fresh kernel."""
    after = "; the kernel was restarted" if restarted else "; no time was left to restart the kernel"
    if res.status == "timeout":
        return f"timed out after {timeout:.0f} s (an infinite loop, or too slow){after}"
    if res.status == "dead":
        note = f" [{res.evalue}]" if res.evalue else ""
        return f"the kernel died (os._exit, a crash or running out of memory){note}{after}"
    if res.ename == "MemoryError":
        return f"ran out of memory (MemoryError; the limit is {memory_limit_mb} MB){after}"
    return _short(f"{res.ename}: {res.evalue}")


def _cell_label(index: int, source: str) -> str:
    """How a student finds the cell: its place among all cells, counted from 1, and its first line."""
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return f"cell {index + 1} ({first[:50]!r})"


def is_check_cell(cell) -> bool:
    """A check cell: nbgrader ``grade: true`` metadata, or a cell that calls ``check_...(``."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("grade")) or bool(CHECK_CALL.search(cell.get("source", "")))


def _fail_all(sub: Submission, chapter: Chapter, message: str, issues: list[str], t0: float) -> Result:
    rows = [Row(sub.student, chapter.name, e.grade_id, False, 0.0, e.points, message, 0.0) for e in chapter.exercises]
    return Result(sub.student, str(sub.path), chapter.name, rows, issues, time.perf_counter() - t0)


def _preamble(chapter: Chapter) -> str:
    """Re-import the course's modules fresh (undoing any monkeypatching), then the check modules."""
    return "\n".join([
        "import sys as _slt_sys",
        "for _slt_m in [m for m in list(_slt_sys.modules) if m == 'slt_course_utils' or m.startswith('slt_course_utils.')]:",
        "    del _slt_sys.modules[_slt_m]",
        *chapter.check_imports,
    ])


def read_notebook(path: Path):
    """The notebook at ``path``, or raise ValueError with a message fit for a student."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ValueError(f"the file could not be read ({err.strerror})") from err
    if not data.strip():
        raise ValueError("the file is empty (0 bytes of notebook): nothing to grade")
    try:
        text = data.decode("utf-8")
        json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"the file is not a valid notebook: invalid JSON ({err})") from err
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as err:  # noqa: BLE001 - any nbformat complaint
        raise ValueError(f"the file is not a valid notebook ({type(err).__name__}: {_short(str(err), 200)})") from err
    if not isinstance(nb.get("cells"), list):
        raise ValueError("the file is not a valid notebook: it has no list of cells")
    return nb


def grade_submission(sub: Submission, chapters: dict[str, Chapter], opts: Options) -> Result:
    """Grade one notebook; never raises (problems become failed rows and issues)."""
    t0 = time.perf_counter()
    issues: list[str] = []
    nb, read_error = None, None
    try:
        nb = read_notebook(sub.path)
    except ValueError as err:
        read_error = str(err)

    # Which chapter?
    named = chapter_from_name(sub.path, chapters)
    content = chapter_from_content(nb, chapters) if nb is not None else None
    wanted = opts.chapter or named or content
    if wanted is None:
        why = read_error or "its name has no NN_slug and its content matches no chapter"
        issues.append(f"could not tell which chapter this is ({why}); rerun with --chapter NN_slug")
        row = Row(sub.student, "?", "(notebook)", False, 0.0, 0.0, issues[-1], 0.0)
        return Result(sub.student, str(sub.path), "?", [row], issues, time.perf_counter() - t0)
    chapter = chapters[wanted]
    if read_error:
        issues.append(read_error)
        return _fail_all(sub, chapter, f"not graded: {read_error}", issues, t0)
    wrong = content is not None and content != wanted
    if wrong:
        issues.append(f"wrong chapter: this notebook is {content}, but it was graded as {wanted}"
                      + (" (--chapter)" if opts.chapter else " (from its file name)"))

    cells = [(i, c) for i, c in enumerate(nb.cells) if c.get("cell_type") == "code"]
    student_cells = [(i, c.source) for i, c in cells if not is_check_cell(c) and c.source.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="slt-grade-"))
    (workdir / "work").mkdir()
    kernel = KernelSession(workdir / "work", kernel_name=opts.kernel_name, memory_limit_mb=opts.memory_limit_mb)
    deadline = t0 + opts.total_timeout
    skipped: set[int] = set()  # cells that broke the kernel: never replayed
    done: list[tuple[int, str]] = []  # student cells run so far (replayed after a restart)
    rows: list[Row] = []

    def time_left() -> float:
        return deadline - time.perf_counter()

    def restart(replay_checks: bool) -> None:
        """A fresh kernel with the student's cells so far replayed (minus the ones that broke it)."""
        while True:
            kernel.start()
            for index, source in done:
                if index in skipped:
                    continue
                if time_left() <= 0:
                    return
                res = kernel.execute(source, min(opts.cell_timeout, time_left()))
                if res.fatal:
                    skipped.add(index)
                    issues.append(f"{_cell_label(index, source)} on replay: "
                                  f"{_describe(res, opts.cell_timeout, opts.memory_limit_mb, restarted=time_left() > 0)}")
                    break
            else:
                if replay_checks:
                    kernel.execute(_preamble(chapter), min(opts.cell_timeout, max(time_left(), 1.0)))
                return
            if time_left() <= 0:
                return

    try:
        try:
            kernel.start()
        except Exception as err:  # noqa: BLE001
            issues.append(f"the kernel could not be started: {err}")
            return _fail_all(sub, chapter, f"not graded: {issues[-1]}", issues, t0)

        for index, source in student_cells:
            if time_left() <= 0:
                issues.append(f"total time limit of {opts.total_timeout:.0f} s reached: cells from {_cell_label(index, source)} on were not run")
                break
            timeout = min(opts.cell_timeout, time_left())
            res = kernel.execute(source, timeout)
            done.append((index, source))
            if res.status == "ok":
                continue
            issues.append(f"{_cell_label(index, source)}: "
                          f"{_describe(res, timeout, opts.memory_limit_mb, restarted=time_left() > 0)}")
            if res.fatal:
                skipped.add(index)
                if time_left() > 0:
                    restart(replay_checks=False)

        if time_left() > 0:
            res = kernel.execute(_preamble(chapter), min(opts.cell_timeout, time_left()))
            if res.status != "ok":
                issues.append("importing the check modules failed: "
                              f"{_describe(res, opts.cell_timeout, opts.memory_limit_mb, restarted=time_left() > 0)}")
                if res.fatal and time_left() > 0:
                    restart(replay_checks=True)

        for ex in chapter.exercises:
            if time_left() <= 0:
                rows.append(Row(sub.student, chapter.name, ex.grade_id, False, 0.0, ex.points,
                                f"not run: the notebook reached the total time limit of {opts.total_timeout:.0f} s", 0.0))
                continue
            timeout = min(opts.cell_timeout, time_left())
            res = kernel.execute(ex.source, timeout)
            passed = res.status == "ok"
            if passed:
                lines = [line for line in res.output.splitlines() if line.startswith("✔")]
                message = lines[-1] if lines else "passed"
            elif res.ename == "NameError":
                name = re.search(r"name '(\w+)' is not defined", res.evalue)
                message = (f"{name.group(1) if name else 'a name'} is not defined: the exercise's function is missing or "
                           f"was renamed, or its cell raised an error (see the notebook's issues). ({res.evalue})")
            elif res.ename in ("CheckFailure", "AssertionError"):
                message = _short(res.evalue) or f"{res.ename} (an assertion in the check, e.g. a hidden test, failed)"
            else:
                message = _describe(res, timeout, opts.memory_limit_mb, restarted=time_left() > 0)
                if res.status == "timeout":
                    message = "the check " + message
            if wrong:
                message = f"wrong chapter ({content}, expected {wanted}): {message}"
            rows.append(Row(sub.student, chapter.name, ex.grade_id, passed, ex.points if passed else 0.0,
                            ex.points, _short(message), round(res.elapsed, 3)))
            if res.fatal and time_left() > 0:
                restart(replay_checks=True)
    except Exception as err:  # noqa: BLE001 - a grader bug must not lose the other students
        issues.append(f"internal grader error: {type(err).__name__}: {err}")
        graded = {r.exercise for r in rows}
        rows += [Row(sub.student, chapter.name, e.grade_id, False, 0.0, e.points, f"not graded: {issues[-1]}", 0.0)
                 for e in chapter.exercises if e.grade_id not in graded]
    finally:
        kernel.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)
    if kernel.starts > 1:
        issues.append(f"the kernel was restarted {kernel.starts - 1} time(s)")
    return Result(sub.student, str(sub.path), chapter.name, rows, issues, time.perf_counter() - t0)


# --------------------------------------------------------------------------------------------
# Submissions in, gradebook out
# --------------------------------------------------------------------------------------------


def _is_hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def collect_submissions(targets: list[Path], chapters: dict[str, Chapter]) -> list[Submission]:
    """Notebooks to grade, with student names (see the module docstring); names are made unique."""
    found: list[Submission] = []
    for target in targets:
        if target.is_dir():
            for path in sorted(target.rglob("*.ipynb")):
                if _is_hidden(path, target) or not path.is_file():
                    continue
                rel = path.relative_to(target)
                student = rel.parts[0] if len(rel.parts) > 1 else path.stem
                found.append(Submission(student, path))
        elif target.exists():
            student = target.stem
            if target.stem in chapters and target.parent.name:  # .../<student>/NN_slug.ipynb
                student = target.resolve().parent.name
            found.append(Submission(student, target))
        else:
            raise FileNotFoundError(f"{target}: no such file or folder")
    # One student may hand in several notebooks (chapters); the same student and the same
    # notebook name twice gets a suffix.
    seen: dict[tuple[str, str], int] = {}
    for sub in found:
        key = (sub.student, chapter_from_name(sub.path, chapters) or sub.path.name)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            sub.student = f"{sub.student}-{seen[key]}"
    return found


def _safe_filename(name: str) -> str:
    return re.sub(r"[^\w.@+-]+", "_", name).strip("._") or "student"


def _fmt(x: float) -> str:
    return f"{x:g}"


def feedback_markdown(student: str, results: list[Result]) -> str:
    lines = [f"# Feedback for {student}", ""]
    for res in results:
        lines += [f"## {res.chapter} — {_fmt(res.points)} / {_fmt(res.max_points)} points", "",
                  f"Notebook: `{Path(res.path).name}`", ""]
        if res.issues:
            lines += ["### Problems while running your notebook", ""] + [f"- {i}" for i in res.issues] + [""]
        failing = [r for r in res.rows if not r.passed]
        passing = [r for r in res.rows if r.passed]
        if passing:
            lines += ["### Passed", ""] + [f"- `{r.exercise}` ({_fmt(r.points)} / {_fmt(r.max_points)}): {r.message}" for r in passing] + [""]
        if failing:
            lines += ["### Failed", ""]
            for r in failing:
                body = r.message.replace("\n", "\n  ")
                lines += [f"- `{r.exercise}` (0 / {_fmt(r.max_points)}): {body}"]
            lines += [""]
    return "\n".join(lines).rstrip() + "\n"


def write_outputs(results: list[Result], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rows = [asdict(r) for res in results for r in res.rows]
    with open(out / "gradebook.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    (out / "gradebook.json").write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    with open(out / "issues.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "chapter", "notebook", "issue"])
        for res in results:
            for issue in res.issues:
                writer.writerow([res.student, res.chapter, res.path, issue])
    feedback = out / "feedback"
    feedback.mkdir(exist_ok=True)
    by_student: dict[str, list[Result]] = {}
    for res in results:
        by_student.setdefault(res.student, []).append(res)
    for student, results_ in by_student.items():
        (feedback / f"{_safe_filename(student)}.md").write_text(feedback_markdown(student, results_), encoding="utf-8")


def summary(results: list[Result], wall: float) -> str:
    width = max([len(r.student) for r in results] + [7])
    lines = [f"{'student':<{width}}  chapter                    points  issues  time"]
    for res in results:
        score = f"{_fmt(res.points)}/{_fmt(res.max_points)}"
        lines.append(f"{res.student:<{width}}  {res.chapter:<25} {score:>7}  {len(res.issues):>6}  {res.runtime_s:5.1f}s")
        for issue in res.issues:
            lines.append(f"{'':<{width}}    ! {issue.splitlines()[0][:160]}")
    lines.append(f"{len(results)} notebook(s) graded in {wall:.1f} s")
    return "\n".join(lines)


def grade_all(subs: list[Submission], chapters: dict[str, Chapter], opts: Options, jobs: int = 2,
              show_progress: bool | None = None) -> list[Result]:
    """Grade ``subs`` with ``jobs`` kernels at a time; results in the order of ``subs``."""
    results: dict[int, Result] = {}
    lock = threading.Lock()

    def one(i: int) -> None:
        try:
            res = grade_submission(subs[i], chapters, opts)
        except Exception as err:  # noqa: BLE001 - belt and braces: never lose the others
            row = Row(subs[i].student, "?", "(notebook)", False, 0.0, 0.0, f"internal grader error: {err}", 0.0)
            res = Result(subs[i].student, str(subs[i].path), "?", [row], [row.message], 0.0)
        with lock:
            results[i] = res

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(one, i) for i in range(len(subs))]
        for fut in progress(as_completed(futures), total=len(futures), desc="grading", unit="notebook",
                            enabled=show_progress):
            fut.result()
    return [results[i] for i in range(len(subs))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m slt_course_utils.grade",
                                     description="Grade student notebooks against the course's checks.",
                                     epilog="See docs/INSTRUCTORS.md.")
    parser.add_argument("submissions", nargs="+", type=Path, help="notebooks, or folders of them")
    parser.add_argument("--out", type=Path, required=True, help="folder for gradebook.csv/.json, issues.csv, feedback/")
    parser.add_argument("--chapter", help="grade every notebook as this chapter (NN_slug or NN)")
    parser.add_argument("--cell-timeout", type=float, default=60.0, help="seconds per cell and per check (default 60)")
    parser.add_argument("--total-timeout", type=float, default=600.0, help="seconds per notebook (default 600)")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks graded at once (default 2)")
    parser.add_argument("--memory-limit-mb", type=int, default=2048,
                        help="memory limit of each kernel (RLIMIT_DATA) in MB, 0 for none (default 2048)")
    parser.add_argument("--solutions", type=Path, default=SOLUTIONS_DIR, help="folder of solution notebooks")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    args = parser.parse_args(argv)

    chapters = load_chapters(args.solutions)
    if not chapters:
        print(f"error: no solution notebooks NN_slug.ipynb in {args.solutions}", file=sys.stderr)
        return 2
    chapter = args.chapter
    if chapter is not None:
        matches = [name for name in chapters if name == chapter or name[:2] == chapter]
        if len(matches) != 1:
            print(f"error: --chapter {chapter}: choose one of {', '.join(chapters)}", file=sys.stderr)
            return 2
        chapter = matches[0]
    try:
        subs = collect_submissions(args.submissions, chapters)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not subs:
        print("error: no notebooks (*.ipynb) found in " + " ".join(map(str, args.submissions)), file=sys.stderr)
        return 2
    opts = Options(chapter=chapter, cell_timeout=args.cell_timeout, total_timeout=args.total_timeout,
                   memory_limit_mb=args.memory_limit_mb or None, kernel_name=args.kernel)
    start = time.perf_counter()
    results = grade_all(subs, chapters, opts, jobs=args.jobs)
    write_outputs(results, args.out)
    print(summary(results, time.perf_counter() - start))
    print(f"Wrote {args.out / 'gradebook.csv'}, gradebook.json, issues.csv and feedback/ ({len({r.student for r in results})} students).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
