"""Grade student notebooks against the course's own checks (instructors' tool).

    python -m slt_course_utils.grade SUBMISSIONS... --out DIR [--chapter NN_slug]
        [--cell-timeout 60] [--total-timeout 600] [--jobs 2] [--memory-limit-mb 2048] [--unsafe]

A submission is a notebook file; a folder is graded notebook by notebook. The student is the
notebook's path relative to the folder without ``.ipynb`` (``section1/carol_00_x``), or its folder's
path when the file is just named like the chapter (``bob/00_bayesian_learning.ipynb`` → ``bob``).

How one notebook is graded (docs/INSTRUCTORS.md argues why a pass can't be forged):

1. The chapter is ``--chapter`` if given, else the chapter whose ``NN_slug`` the file name
   contains, else the chapter its content points to. If the name and the content disagree the
   notebook is reported as the wrong chapter (and graded against the chapter asked for: 0).
2. The exercises — grade id, points, check cell — come from the chapter's SOLUTION notebook.
3. The student's code cells (all but the check cells, known by nbgrader metadata only) run one by
   one in a sandboxed plain-Python student process (:mod:`slt_course_utils.grading.sandbox`:
   bubblewrap, uid 65534, no network, a read-only package snapshot, RLIMIT_AS). ``exit()`` is blamed
   on its cell; a cell that kills the process or times out is blamed, the process restarted and
   the other cells replayed.
4. Each canonical check cell then runs HERE, in the grader, where no student code runs: the
   student's functions are proxies that run in the student process and return plain data only
   (:mod:`slt_course_utils.grading.checking`, :mod:`slt_course_utils.grading.wire`).

Outputs in ``--out``: ``gradebook.csv`` and ``gradebook.json`` (one row per student and exercise:
student, chapter, exercise, passed, points, max_points, message, runtime_s; written from one list,
atomically), ``issues.csv`` and ``feedback/<student>.md``. Exit status 0 once everything is graded,
whatever the students' scores; 2 for a usage error or when the sandbox is unavailable (see --unsafe).
"""

from __future__ import annotations

import argparse
import ast
import atexit
import csv
import hashlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from slt_course_utils.grading import checking, sandbox
from slt_course_utils.grading.sandbox import Reply
from slt_course_utils.progress import progress

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS_DIR = PACKAGE_ROOT / "solutions"
CHAPTER_NAME = re.compile(r"(\d\d)_[a-z0-9_]*[a-z0-9]")
CHECK_IMPORT = re.compile(r"^\s*(from\s+slt_course_utils\.checks\s+import\s+.+|import\s+slt_course_utils\.checks\b.*)$", re.M)
CHECK_MODULE_REF = re.compile(r"\bch(\d\d)\s*\.\s*check_|slt_course_utils\.checks\s+import\s+ch(\d\d)\b|slt_course_utils\.checks\.ch(\d\d)\b")
GRADE_ID_CHAPTER = re.compile(r"^ch(\d\d)-")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
MAX_NOTEBOOK_MB = 20
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
    unsafe: bool = False  # run student code without the bubblewrap sandbox (only rlimits)
    snapshot: str | None = None  # the read-only package copy student processes import (made on first use)


def _short(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    text = ANSI.sub("", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(reply: Reply, timeout: float, memory_limit_mb: int | None, restarted: bool = True) -> str:
    """What went wrong in a cell, for a student; ``restarted`` says whether grading went on in a fresh process."""
    after = "; the process was restarted without this cell" if restarted else "; no time was left to restart it"
    body = reply.body
    if reply.status == "timeout":
        return f"timed out after {timeout:.0f} s (an infinite loop, or too slow){after}"
    if reply.status == "dead":
        note = f" [{body['note']}]" if body.get("note") else ""
        return f"the process died (os._exit, a crash or running out of memory){note}{after}"
    if reply.status == "exit":
        return (f"called exit()/quit()/sys.exit ({_short(str(body.get('evalue', '')), 80)}): the cell was stopped there "
                "and is not run again; the other cells were graded")
    if body.get("ename") == "MemoryError" or "Cannot allocate memory" in str(body.get("evalue", "")):
        return f"ran out of memory ({body.get('ename')}; the limit is {memory_limit_mb} MB){after}"
    return _short(f"{body.get('ename', 'Error')}: {body.get('evalue', '')}")


def _fatal(reply: Reply) -> bool:
    """The process can't be trusted after this cell: restart it and replay the cells before, without this one."""
    return reply.status in ("timeout", "dead") or (
        reply.status == "error" and (reply.body.get("ename") == "MemoryError"
                                     or "Cannot allocate memory" in str(reply.body.get("evalue", ""))))


def _cell_label(index: int, source: str) -> str:
    """How a student finds the cell: its place among all cells, counted from 1, and its first line."""
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return f"cell {index + 1} ({first[:50]!r})"


def _nbgrader(cell) -> dict:
    meta = cell.get("metadata", {})
    meta = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return meta if isinstance(meta, dict) else {}


def is_check_cell(cell) -> bool:
    """A check cell: nbgrader ``grade: true`` and not ``solution: true`` (metadata only, never the source)."""
    meta = _nbgrader(cell)
    return bool(meta.get("grade")) and not bool(meta.get("solution"))


def defines_something(source: str) -> bool:
    """Whether a cell binds a name (def, class, assignment, import other than a check module, ...)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return True  # can't tell: run it (its error is reported)
    for node in tree.body:
        if isinstance(node, ast.Expr):
            continue
        if isinstance(node, ast.ImportFrom) and node.module == "slt_course_utils.checks":
            continue
        if isinstance(node, ast.Import) and all(a.name.startswith("slt_course_utils.checks") for a in node.names):
            continue
        return True
    return False


MAGIC = re.compile(r"^([ \t]*)[%!].*$", re.M)


def runnable_cells(nb, chapter: Chapter) -> tuple[list[tuple[int, str]], list[str]]:
    """The code cells to run (IPython magics made no-ops) and the issues about cells that are not run.

    A check cell (by its nbgrader metadata) that only calls checks is not run: the grader runs the
    solution's own check instead. It is reported when it differs from the handed-out one. Any cell
    that defines something runs, whatever its metadata.
    """
    canonical = {_normalise(_visible(e.source)) for e in chapter.exercises}
    cells, notes = [], []
    for index, cell in enumerate(nb.cells):
        source = cell.get("source", "")
        if cell.get("cell_type") != "code" or not isinstance(source, str) or not source.strip():
            continue
        if is_check_cell(cell) and not defines_something(source):
            if _normalise(source) not in canonical:
                notes.append(f"{_cell_label(index, source)} is a check cell that differs from the handed-out one: "
                             "it was not run (the course's own check was run instead)")
            continue
        if source.lstrip().startswith("%%"):
            notes.append(f"{_cell_label(index, source)} is a cell magic ({source.split()[0]}): it was not run")
            continue
        cells.append((index, MAGIC.sub(r"\1pass  # IPython magic or shell command, not run by the grader", source)))
    return cells, notes


def _visible(source: str) -> str:
    return re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", "", source, flags=re.S)


def _normalise(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines() if line.strip())


def _fail_all(sub: Submission, chapter: Chapter, message: str, issues: list[str], t0: float) -> Result:
    rows = [Row(sub.student, chapter.name, e.grade_id, False, 0.0, e.points, message, 0.0) for e in chapter.exercises]
    return Result(sub.student, str(sub.path), chapter.name, rows, issues, time.perf_counter() - t0)


def read_notebook(path: Path):
    """The notebook at ``path``, or raise ValueError with a message fit for a student."""
    try:
        size = path.stat().st_size
    except OSError as err:
        raise ValueError(f"the file could not be read ({err.strerror})") from err
    if size > MAX_NOTEBOOK_MB * 1024 * 1024:
        raise ValueError(f"the notebook is {size / 1024 / 1024:.1f} MB, over the {MAX_NOTEBOOK_MB} MB limit: "
                         "clear its outputs (Edit → Clear Outputs of All Cells), save, and hand it in again")
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


_SNAPSHOT_LOCK = threading.Lock()
_SNAPSHOT: list[str] = []


def package_snapshot() -> str:
    """The read-only copy of ``slt_course_utils`` that student processes import (made once per grader run)."""
    with _SNAPSHOT_LOCK:
        if not _SNAPSHOT:
            root = Path(tempfile.mkdtemp(prefix="slt-grade-package-"))
            sandbox.snapshot_package(root / "pkg")
            atexit.register(_remove_snapshot, root)
            _SNAPSHOT.append(str(root / "pkg"))
        return _SNAPSHOT[0]


def _remove_snapshot(root: Path) -> None:
    for dirpath, dirs, _ in os.walk(root):
        for name in dirs:
            os.chmod(os.path.join(dirpath, name), 0o755)
    os.chmod(root / "pkg", 0o755)
    shutil.rmtree(root, ignore_errors=True)


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

    cells, notes = runnable_cells(nb, chapter)
    issues += notes
    snapshot = opts.snapshot or package_snapshot()
    if not opts.unsafe:
        problem = sandbox.sandbox_problem(snapshot)
        if problem:
            issues.append(f"not graded: the sandbox is unavailable ({problem}); see docs/INSTRUCTORS.md (--unsafe)")
            return _fail_all(sub, chapter, issues[-1], issues, t0)
    process = sandbox.StudentProcess(snapshot, sub.path, memory_limit_mb=opts.memory_limit_mb, unsafe=opts.unsafe)
    session = checking.Session(process)
    deadline = t0 + opts.total_timeout
    blamed: set[int] = set()  # cells that exited or broke the process: never run again
    done: list[tuple[int, str]] = []  # cells run so far (replayed after a restart)
    rows: list[Row] = []

    def time_left() -> float:
        return deadline - time.perf_counter()

    def restart() -> None:
        """A fresh process with the cells so far replayed (minus the blamed ones)."""
        while time_left() > 0:
            process.start()
            for index, source in done:
                if index in blamed:
                    continue
                if time_left() <= 0:
                    return
                reply = process.request(("cell", index, source), min(opts.cell_timeout, time_left()))
                if _fatal(reply) or reply.status == "exit":
                    blamed.add(index)
                    issues.append(f"{_cell_label(index, source)} on replay: "
                                  f"{_describe(reply, opts.cell_timeout, opts.memory_limit_mb, time_left() > 0)}")
                    break
            else:
                return

    try:
        try:
            process.start()
        except Exception as err:  # noqa: BLE001
            issues.append(f"the student process could not be started: {err}")
            return _fail_all(sub, chapter, f"not graded: {issues[-1]}", issues, t0)

        for index, source in cells:
            if time_left() <= 0:
                issues.append(f"total time limit of {opts.total_timeout:.0f} s reached: cells from "
                              f"{_cell_label(index, source)} on were not run")
                break
            timeout = min(opts.cell_timeout, time_left())
            reply = process.request(("cell", index, source), timeout)
            done.append((index, source))
            if reply.status == "ok":
                continue
            issues.append(f"{_cell_label(index, source)}: "
                          f"{_describe(reply, timeout, opts.memory_limit_mb, restarted=time_left() > 0)}")
            if reply.status == "exit":
                blamed.add(index)
            elif _fatal(reply):
                blamed.add(index)
                if time_left() > 0:
                    restart()

        for ex in chapter.exercises:
            if time_left() <= 0:
                rows.append(Row(sub.student, chapter.name, ex.grade_id, False, 0.0, ex.points,
                                f"not run: the notebook reached the total time limit of {opts.total_timeout:.0f} s", 0.0))
                continue
            if not process.alive():
                restart()
            start = time.perf_counter()
            outcome = checking.run_check(ex.source, ex.grade_id, session, min(opts.cell_timeout, time_left()),
                                         preamble="\n".join(chapter.check_imports))
            message = outcome.message
            if not outcome.passed and outcome.ename == "NameError":
                name = re.search(r"name '(\w+)' is not defined", message)
                message = (f"{name.group(1) if name else 'a name'} is not defined: the exercise's function is missing or "
                           f"was renamed, or its cell raised an error (see the notebook's issues). ({message})")
            elif not outcome.passed and outcome.ename in ("CheckFailure", "AssertionError") and not message.strip():
                message = f"{outcome.ename} (an assertion in the check, e.g. a hidden test, failed)"
            if wrong:
                message = f"wrong chapter ({content}, expected {wanted}): {message}"
            rows.append(Row(sub.student, chapter.name, ex.grade_id, outcome.passed, ex.points if outcome.passed else 0.0,
                            ex.points, _short(message), round(time.perf_counter() - start, 3)))
            if outcome.fatal and time_left() > 0:
                restart()
    except Exception as err:  # noqa: BLE001 - a grader bug must not lose the other students
        issues.append(f"internal grader error: {type(err).__name__}: {err}")
        graded = {r.exercise for r in rows}
        rows += [Row(sub.student, chapter.name, e.grade_id, False, 0.0, e.points, f"not graded: {issues[-1]}", 0.0)
                 for e in chapter.exercises if e.grade_id not in graded]
    finally:
        process.stop()
    if process.starts > 1:
        issues.append(f"the student process was restarted {process.starts - 1} time(s)")
    return Result(sub.student, str(sub.path), chapter.name, rows, issues, time.perf_counter() - t0)


# --------------------------------------------------------------------------------------------
# Submissions in, gradebook out
# --------------------------------------------------------------------------------------------


def _is_hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _named_like_chapter(path: Path, chapters: dict[str, Chapter]) -> bool:
    """``NN_slug.ipynb``, ``NN_slug (1).ipynb``, ``NN_slug-v2.ipynb``: the name says nothing about who."""
    return any(path.stem == name or (path.stem.startswith(name) and not path.stem[len(name)].isalnum())
               for name in chapters)


def student_name(rel: Path, chapters: dict[str, Chapter]) -> str:
    """The student of a notebook at ``rel`` (relative to the submissions folder): its full relative path
    without ``.ipynb``, or the path of its folder when the file is just named like the chapter."""
    if len(rel.parts) > 1 and _named_like_chapter(rel, chapters):
        return "/".join(rel.parts[:-1])
    return "/".join(rel.with_suffix("").parts)


def collect_submissions(targets: list[Path], chapters: dict[str, Chapter]) -> list[Submission]:
    """Notebooks to grade, with student names (see :func:`student_name`); names are made unique."""
    found: list[Submission] = []
    for target in targets:
        if target.is_dir():
            for path in sorted(target.rglob("*.ipynb")):
                if _is_hidden(path, target) or not path.is_file():
                    continue
                found.append(Submission(student_name(path.relative_to(target), chapters), path))
        elif target.exists():
            student = target.stem
            if _named_like_chapter(target, chapters) and target.resolve().parent.name:  # .../<student>/NN_slug.ipynb
                student = target.resolve().parent.name
            found.append(Submission(student, target))
        else:
            raise FileNotFoundError(f"{target}: no such file or folder")
    # One student may hand in several notebooks (chapters); the same student and the same
    # chapter twice gets a suffix.
    seen: dict[tuple[str, str], int] = {}
    for sub in found:
        key = (sub.student, chapter_from_name(sub.path, chapters) or sub.path.name)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            sub.student = f"{sub.student}-{seen[key]}"
    return found


def _safe_filename(name: str) -> str:
    return re.sub(r"[^\w.@+-]+", "_", unicodedata.normalize("NFC", name)).strip("._") or "student"


def feedback_filenames(students: list[str]) -> dict[str, str]:
    """A distinct, safe file name per student: the name itself when it is safe and unique (ignoring case
    and Unicode normalisation), else the safe form plus 8 hex digits of the name's SHA-256."""
    safe = {s: _safe_filename(s) for s in students}
    count: dict[str, int] = {}
    for name in safe.values():
        key = name.casefold()
        count[key] = count.get(key, 0) + 1
    out = {}
    for student, name in safe.items():
        if name != student or count[name.casefold()] > 1:
            name = f"{name}-{hashlib.sha256(student.encode()).hexdigest()[:8]}"
        out[student] = f"{name}.md"
    return out


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


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _csv_text(header: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def write_outputs(results: list[Result], out: Path) -> None:
    """gradebook.csv and gradebook.json from one list of rows, issues.csv, feedback/; each file replaced atomically."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [asdict(r) for res in results for r in res.rows]
    _write_atomically(out / "gradebook.csv", _csv_text(FIELDS, [[r[k] for k in FIELDS] for r in rows]))
    _write_atomically(out / "gradebook.json", json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    _write_atomically(out / "issues.csv", _csv_text(["student", "chapter", "notebook", "issue"],
                                                    [[res.student, res.chapter, res.path, i] for res in results
                                                     for i in res.issues]))
    feedback = out / "feedback"
    feedback.mkdir(exist_ok=True)
    by_student: dict[str, list[Result]] = {}
    for res in results:
        by_student.setdefault(res.student, []).append(res)
    names = feedback_filenames(list(by_student))
    for student, results_ in by_student.items():
        _write_atomically(feedback / names[student], feedback_markdown(student, results_))


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
    """Grade ``subs`` with ``jobs`` student processes at a time; results in the order of ``subs``."""
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
                        help="memory a student process may add to its address space (RLIMIT_AS) once Python, "
                             "NumPy and torch are loaded, in MB; 0 for none (default 2048)")
    parser.add_argument("--solutions", type=Path, default=SOLUTIONS_DIR, help="folder of solution notebooks")
    parser.add_argument("--unsafe", action="store_true",
                        help="grade even where the bubblewrap sandbox cannot start (student code then runs with "
                             "your rights: trusted notebooks only)")
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
    snapshot = package_snapshot()
    problem = sandbox.sandbox_problem(snapshot)
    if problem and not args.unsafe:
        print(f"error: REFUSING TO GRADE: the sandbox is unavailable here: {problem}.\n"
              "Student code must not run unsandboxed. Install Debian's 'bubblewrap' package (make test does it "
              "as root), or pass --unsafe to grade trusted notebooks without it (see docs/INSTRUCTORS.md).",
              file=sys.stderr)
        return 2
    if args.unsafe:
        print("WARNING: --unsafe: student code runs WITHOUT the sandbox, with your rights: it can read and write "
              "your files (the solutions, other submissions, the gradebook) and use the network.", file=sys.stderr)
    import torch

    torch.set_num_threads(1)  # the checks run here, one per grading thread
    opts = Options(chapter=chapter, cell_timeout=args.cell_timeout, total_timeout=args.total_timeout,
                   memory_limit_mb=args.memory_limit_mb or None, unsafe=args.unsafe, snapshot=snapshot)
    start = time.perf_counter()
    results = grade_all(subs, chapters, opts, jobs=args.jobs)
    write_outputs(results, args.out)
    print(summary(results, time.perf_counter() - start))
    print(f"Wrote {args.out / 'gradebook.csv'}, gradebook.json, issues.csv and feedback/ ({len({r.student for r in results})} students).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
