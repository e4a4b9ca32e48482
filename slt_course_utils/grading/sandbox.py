"""The sandbox a student's code runs in: bubblewrap, an unprivileged uid, limits, a pristine package copy.

One :class:`StudentProcess` is a plain ``python -I -S`` (no IPython, no user site, no ``.pth`` files)
running :mod:`.runner` inside bubblewrap (:func:`bwrap_command`) as an unprivileged uid: no network,
its own PID namespace (every process it starts dies with it), a private ``/tmp``, and only ``/usr``,
the environment's site-packages and a read-only snapshot of ``slt_course_utils`` (no ``solutions/``)
visible, plus the student's own notebook read-only in its working folder. Each process's address
space is capped (``RLIMIT_AS``: shared mappings count), the whole sandbox's memory too where a memory
cgroup can be made (:class:`MemoryCgroup`), and its tmpfs folders have a size.
"""

from __future__ import annotations

import compileall
import itertools
import os
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from slt_course_utils.grading import wire

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # .../slt_course_utils
SANDBOX_UID = 65534  # nobody: the uid inside an unprivileged user namespace
SANDBOX_UID_BASE = 200_000  # as root: each sandbox gets a real uid of its own from here, no passwd entry
MAX_PROCESSES = 64  # RLIMIT_NPROC of a student process (threads count too)
WORKDIR = "/student"  # the working folder inside the sandbox (a size-limited tmpfs)
COURSE = "/course"  # where the package snapshot is mounted inside the sandbox
TMPFS_MB = 256
MAX_OUTPUT_CHARS = 20_000
MAX_REPLY = 32 * 1024 * 1024


class StudentTimeout(BaseException):
    """The student's code ran past its time (a BaseException: a check's ``except Exception`` can't eat it)."""


class StudentDied(BaseException):
    """The student process ended (``os._exit``, a crash, the memory limit) or broke the protocol."""


@dataclass
class Reply:
    status: str  # "ok", "error", "exit", "timeout", "dead"
    body: dict
    elapsed: float


# ---- the pristine package --------------------------------------------------------------------


def snapshot_package(dest: Path) -> Path:
    """Copy ``slt_course_utils`` (byte-compiled) under ``dest`` and make it read-only; return ``dest``."""
    target = dest / "slt_course_utils"
    shutil.copytree(PACKAGE_DIR, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    compileall.compile_dir(str(target), quiet=2)
    for root, dirs, files in os.walk(dest):
        for name in files:
            os.chmod(os.path.join(root, name), 0o444)
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o555)
    os.chmod(dest, 0o555)
    return dest


def _site_dirs() -> list[str]:
    paths = sysconfig.get_paths()
    return list(dict.fromkeys(p for p in (paths["purelib"], paths["platlib"]) if os.path.isdir(p)))


def _python() -> str:
    return os.path.realpath(sys.executable)


def _bootstrap(snapshot: str) -> str:
    path = [snapshot, *_site_dirs()]
    return (f"import sys; sys.path[:0] = {path!r}; "
            "from slt_course_utils.grading.runner import main; main()")


# ---- bubblewrap --------------------------------------------------------------------------------


_uids = itertools.count()


def sandbox_uid() -> int:
    """A fresh unprivileged uid for the next sandbox (when the grader is root): no two running
    sandboxes share one, so the process limit of one student never touches another's."""
    return SANDBOX_UID_BASE + next(_uids) % 50_000


def bwrap_command(notebook: Path | None, snapshot: str, uid: int = SANDBOX_UID) -> tuple[list[str], list[int]]:
    """The sandboxed command for one student process (see the module docstring), and the descriptors to pass.

    As root: bwrap keeps only CAP_SETUID/CAP_SETGID, and ``setpriv`` inside the sandbox becomes the
    real, unprivileged ``uid`` (so RLIMIT_NPROC holds) with no capabilities and no_new_privs. As
    another user: an unprivileged user namespace, mapped to ``uid`` inside. Every bind is made from
    a descriptor the grader opened (``--ro-bind-fd``), so bwrap needs no right to walk host paths.
    """
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise RuntimeError("bubblewrap (bwrap) is not installed")
    cmd = [bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
           "--die-with-parent", "--new-session"]
    inner: list[str] = []
    if os.geteuid() == 0:
        setpriv = "/usr/bin/setpriv"
        if not os.path.exists(setpriv):
            raise RuntimeError("running as root, and /usr/bin/setpriv (util-linux) is missing to drop to an unprivileged uid")
        cmd += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        inner = [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                 "--bounding-set=-all", "--no-new-privs"]
    else:
        cmd += ["--unshare-user", "--uid", str(uid), "--gid", str(uid), "--cap-drop", "ALL"]
    fds: list[int] = []
    parents: set[str] = set()

    def bind(source: str, dest: str) -> None:
        fd = os.open(source, os.O_PATH | os.O_CLOEXEC)
        os.set_inheritable(fd, True)
        fds.append(fd)
        cmd.extend(["--ro-bind-fd", str(fd), dest])
        parents.update(str(p) for p in Path(dest).parents if str(p) != "/")

    # The fresh file systems first: a later bind under /tmp (a checkout or venv in /tmp) must not be
    # hidden by the tmpfs mounted over /tmp.
    cmd += ["--proc", "/proc", "--dev", "/dev",
            "--size", str(64 * 1024 * 1024), "--tmpfs", "/dev/shm",
            "--size", str(TMPFS_MB * 1024 * 1024), "--tmpfs", "/tmp",
            "--size", str(TMPFS_MB * 1024 * 1024), "--tmpfs", WORKDIR]
    bind("/usr", "/usr")
    for link in ("bin", "lib", "lib32", "lib64", "sbin"):
        target = Path("/") / link
        if target.is_symlink():
            cmd.extend(["--symlink", os.readlink(target), f"/{link}"])
        elif target.is_dir():
            bind(str(target), f"/{link}")
    prefix = os.path.realpath(sys.base_prefix)
    if not prefix.startswith("/usr/"):
        bind(prefix, prefix)
    for site in _site_dirs():
        if not site.startswith(prefix + "/") and not site.startswith("/usr/"):
            bind(site, site)
    if os.path.exists("/etc/ld.so.cache"):
        bind("/etc/ld.so.cache", "/etc/ld.so.cache")
    bind(snapshot, COURSE)
    if notebook is not None:
        bind(str(notebook), f"{WORKDIR}/{_inside_name(notebook)}")
    parents -= {"/usr", "/dev", "/proc", "/tmp", WORKDIR}
    # bwrap makes the folders above a bind with the host's modes (/root is 0700): open them up
    for parent in sorted(parents, key=len):
        cmd += ["--chmod", "0755", parent]
    cmd += ["--chmod", "1777", "/tmp", "--chmod", "1777", "/dev/shm", "--chmod", "0777", WORKDIR,
            "--chdir", WORKDIR, "--hostname", "sandbox", "--", *inner]
    return cmd, fds


def _inside_name(notebook: Path) -> str:
    name = notebook.name
    return name if name and "/" not in name and not name.startswith(".") else "notebook.ipynb"


_PROBE: dict[str, str | None] = {}


def sandbox_problem(snapshot: str) -> str | None:
    """None if a bubblewrap sandbox starts here (and can import the snapshot), else why not."""
    if snapshot in _PROBE:
        return _PROBE[snapshot]
    fds: list[int] = []
    try:
        cmd, fds = bwrap_command(None, snapshot)
        cmd += [_python(), "-I", "-S", "-c",
                f"import sys; sys.path[:0] = {[COURSE, *_site_dirs()]!r}; import slt_course_utils.grading.wire, os; "
                "print('uid', os.getuid())"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=_env(), pass_fds=fds)
        if proc.returncode != 0 or "uid" not in proc.stdout:
            why = (proc.stderr or proc.stdout).strip().splitlines()
            problem = f"bwrap failed to start ({why[-1] if why else f'exit status {proc.returncode}'})"
        else:
            problem = None
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as err:
        problem = str(err)
    finally:
        for fd in fds:
            os.close(fd)
    _PROBE[snapshot] = problem
    return problem


def _env() -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": WORKDIR, "LANG": "C.UTF-8", "MPLBACKEND": "Agg",
           "MPLCONFIGDIR": "/tmp/matplotlib", "SLT_PROGRESS": "0", "MALLOC_ARENA_MAX": "2",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "TMPDIR": "/tmp"}
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[var] = "1"
    return env


# ---- a memory cgroup for the whole sandbox, where this machine lets us make one ------------------

CGROUP_SLACK_MB = 1024  # on top of --memory-limit-mb: Python + NumPy + torch resident, and the tmpfs files
_cgroups = itertools.count()


def memory_cgroup_parent() -> tuple[Path, str] | None:
    """This process's memory cgroup folder and version ("v1"/"v2") if a child group can be made in it."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            base = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            if (base / "memory.limit_in_bytes").exists() and os.access(base, os.W_OK):
                return base, "v1"
        elif controllers == "" and Path("/sys/fs/cgroup/cgroup.controllers").exists():
            base = Path("/sys/fs/cgroup") / path.lstrip("/")
            try:
                delegated = "memory" in (base / "cgroup.subtree_control").read_text().split()
            except OSError:
                delegated = False
            if delegated and os.access(base, os.W_OK):
                return base, "v2"
    return None


class MemoryCgroup:
    """A child memory cgroup capping every process of one sandbox together (tmpfs pages included)."""

    def __init__(self, limit_mb: int) -> None:
        found = memory_cgroup_parent()
        if found is None:
            raise OSError("no writable memory cgroup")
        base, self.version = found
        self.path = base / f"slt-grade-{os.getpid()}-{next(_cgroups)}"
        self.path.mkdir()
        limit = str(limit_mb * 1024 * 1024)
        try:
            if self.version == "v1":
                (self.path / "memory.limit_in_bytes").write_text(limit)
                if (self.path / "memory.memsw.limit_in_bytes").exists():
                    (self.path / "memory.memsw.limit_in_bytes").write_text(limit)
            else:
                (self.path / "memory.max").write_text(limit)
                if (self.path / "memory.swap.max").exists():
                    (self.path / "memory.swap.max").write_text("0")
        except OSError:
            self.remove()
            raise

    def wrap(self, cmd: list[str]) -> list[str]:
        """``cmd`` started inside the group: a shell puts itself in, then execs it (children follow)."""
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.path / "cgroup.procs"), *cmd]

    def remove(self) -> None:
        for _ in range(20):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.05)


# ---- one student process -----------------------------------------------------------------------


class StudentProcess:
    """The student's interpreter: start, run cells, call functions, stop. Never trusts a byte it sends."""

    def __init__(self, snapshot: str, notebook: Path | None, *, memory_limit_mb: int | None,
                 unsafe: bool = False, startup_timeout: float = 120.0) -> None:
        self.snapshot = snapshot
        self.notebook = notebook
        self.memory_limit_mb = memory_limit_mb or 0
        self.unsafe = unsafe
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self.reply_fd = -1
        self.starts = 0
        self.output: list[str] = []
        self.output_size = 0
        self._drain: threading.Thread | None = None
        self._tmp: str | None = None
        self._cgroup: MemoryCgroup | None = None

    # -- life cycle --

    def start(self) -> None:
        self.stop()
        read_fd, write_fd = os.pipe()
        uid = sandbox_uid() if os.geteuid() == 0 and not self.unsafe else 0
        args = [str(self.memory_limit_mb), str(TMPFS_MB), str(write_fd), str(MAX_PROCESSES if uid else 0)]
        python = [_python(), "-I", "-S", "-c", _bootstrap(self.snapshot if self.unsafe else COURSE)]
        if self.unsafe:
            self._tmp = tempfile.mkdtemp(prefix="slt-grade-unsafe-")
            if self.notebook is not None:
                shutil.copy(self.notebook, Path(self._tmp) / _inside_name(self.notebook))
            cmd, cwd = python + args, self._tmp
            env = {**_env(), "HOME": self._tmp, "TMPDIR": self._tmp, "MPLCONFIGDIR": self._tmp}
        fds: list[int] = []
        try:
            if not self.unsafe:
                cmd, fds = bwrap_command(self.notebook, self.snapshot, uid or SANDBOX_UID)
                cmd, cwd, env = cmd + python + args, "/", _env()
                if self.memory_limit_mb:
                    try:
                        self._cgroup = MemoryCgroup(self.memory_limit_mb + CGROUP_SLACK_MB)
                        cmd = self._cgroup.wrap(cmd)
                    except OSError:
                        self._cgroup = None
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         pass_fds=(write_fd, *fds), cwd=cwd, env=env, start_new_session=True)
        finally:
            for fd in (write_fd, *fds):
                os.close(fd)
        self.reply_fd = read_fd
        self.starts += 1
        self._drain = threading.Thread(target=self._drain_output, args=(self.proc.stdout,), daemon=True)
        self._drain.start()
        reply = self._await(time.perf_counter() + self.startup_timeout)
        if reply.status != "ok" or reply.body.get("t") != "ready":
            tail = "".join(self.output)[-500:].strip()
            self.stop()
            raise RuntimeError(f"the student process did not start ({reply.status}){': ' + tail if tail else ''}")

    def _drain_output(self, stream) -> None:
        """Keep the first MAX_OUTPUT_CHARS of what the student prints; read and drop the rest."""
        try:
            while True:
                chunk = stream.read1(1 << 16)
                if not chunk:
                    return
                if self.output_size < MAX_OUTPUT_CHARS:
                    text = chunk.decode("utf-8", "replace")[: MAX_OUTPUT_CHARS - self.output_size]
                    self.output.append(text)
                    self.output_size += len(text)
        except (OSError, ValueError):
            return

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def death_note(self) -> str:
        code = self.proc.poll() if self.proc is not None else None
        if code is None:
            return ""
        if code > 128 and not self.unsafe:  # bwrap exits 128 + N when its child is killed by signal N
            code = 128 - code
        if code < 0:
            try:
                return f"killed by signal {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit status {code}"

    def stop(self) -> None:
        if self.proc is not None:
            if self.unsafe:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
            try:
                self.proc.kill()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    stream.close()
                except (OSError, AttributeError):
                    pass
            self.proc = None
        if self.reply_fd >= 0:
            os.close(self.reply_fd)
            self.reply_fd = -1
        if self._cgroup is not None:
            self._cgroup.remove()
            self._cgroup = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # -- requests --

    def request(self, message: tuple, timeout: float) -> Reply:
        """Send ``message``; wait at most ``timeout`` seconds for the reply (then the process is killed)."""
        start = time.perf_counter()
        deadline = start + max(timeout, 0.0)
        if not self.alive():
            return Reply("dead", {}, 0.0)
        try:
            self._send(wire.dumps_request(message), deadline)
        except TimeoutError:
            self.stop()
            return Reply("timeout", {}, time.perf_counter() - start)
        except OSError:
            return Reply("dead", {}, time.perf_counter() - start)
        reply = self._await(deadline)
        reply.elapsed = time.perf_counter() - start
        return reply

    def _send(self, payload: bytes, deadline: float) -> None:
        fd = self.proc.stdin.fileno()
        data = memoryview(wire._HEADER.pack(len(payload)) + payload)
        os.set_blocking(fd, False)
        while data:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError
            _, ready, _ = select.select([], [fd], [], min(left, 0.5))
            if ready:
                try:
                    data = data[os.write(fd, data[: 1 << 16]):]
                except BlockingIOError:
                    continue

    def _read(self, n: int, deadline: float) -> bytes:
        chunks, left = [], n
        while left:
            wait = deadline - time.perf_counter()
            if wait <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.reply_fd], [], [], min(wait, 0.5))
            if not ready:
                continue
            chunk = os.read(self.reply_fd, min(left, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _await(self, deadline: float) -> Reply:
        try:
            (size,) = wire._HEADER.unpack(self._read(wire._HEADER.size, deadline))
            if size > MAX_REPLY:
                raise wire.WireError(f"a reply of {size} bytes (the limit is {MAX_REPLY})")
            body = wire.loads_reply(self._read(size, deadline))
        except TimeoutError:
            self.stop()
            return Reply("timeout", {}, 0.0)
        except EOFError:
            self._reap()
            return Reply("dead", {"note": self.death_note()}, 0.0)
        except (wire.WireError, ValueError, UnicodeDecodeError, RecursionError) as err:
            self.stop()
            return Reply("dead", {"note": f"it broke the grader's protocol: {err}"}, 0.0)
        status = body.get("status", "ok") if body.get("t") == "cell" else "ok"
        return Reply(status if status in ("ok", "error", "exit") else "error", body, 0.0)

    def _reap(self) -> None:
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def captured_output(self) -> str:
        return "".join(self.output)[:MAX_OUTPUT_CHARS]
