"""The course website (make site): every page is there, nothing is loaded from the network, and a
real browser (headless Chromium) renders chapter 00 with its headings, equations and figures.

The site is built once per test session into a temporary folder. The browser runs with every host
but localhost unresolvable, so a page that needed the network would fail to render its math.
Screenshots are saved under test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import functools
import importlib.util
import re
import shutil
import subprocess
import threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pytest

from slt_course_utils import colab
from slt_course_utils.make_exercises import STUB_MESSAGE

from .conftest import CHAPTERS, EXERCISES, REPO, SOLUTIONS, notebooks

ARTIFACTS = REPO / "test-artifacts"
SEMINARS = sorted((REPO / "docs" / "seminar").glob("[0-9][0-9]_*.md"))
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
EXTERNAL = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)


def _load_build_module():
    spec = importlib.util.spec_from_file_location("site_build", REPO / "docs" / "site" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The site is built as if published from this (example) repository, so that launch links appear.
EXAMPLE_REPO = "https://github.com/example-org/slt-course"


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The built site (one build per test session), with launch links for EXAMPLE_REPO."""
    root = tmp_path_factory.mktemp("site")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(colab.REPO_ENV, EXAMPLE_REPO)
        mp.delenv(colab.BRANCH_ENV, raising=False)
        index = _load_build_module().build(out=root / "html", stage_dir=root / "src")
    assert index.is_file()
    return index.parent


# ----------------------------------------------------------------------------- static checks


class _Assets(HTMLParser):
    """Collects the addresses a page loads: script src, link href, img/iframe/source src, inline CSS."""

    def __init__(self):
        super().__init__()
        self.loaded: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "link" and attrs.get("href"):
            self.loaded.append(attrs["href"])
        if tag in ("script", "img", "iframe", "source", "embed", "video", "audio") and attrs.get("src"):
            self.loaded.append(attrs["src"])
        if attrs.get("style"):
            self.styles.append(attrs["style"])
        self._in_style = tag == "style"

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)

    def handle_endtag(self, tag):
        self._in_style = False


def _css_urls(css: str) -> list[str]:
    urls = re.findall(r"url\(\s*['\"]?([^'\")]+)", css)
    urls += re.findall(r"@import\s+['\"]([^'\"]+)", css)
    return urls


def test_site_loads_nothing_from_the_network(site):
    """No script, stylesheet, font, image or frame comes from outside the site."""
    offenders = []
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 5
    for page in pages:
        parser = _Assets()
        parser.feed(page.read_text(encoding="utf-8"))
        urls = parser.loaded + [u for style in parser.styles for u in _css_urls(style)]
        offenders += [f"{page.relative_to(site)}: {u}" for u in urls if EXTERNAL.match(u)]
    for css in sorted(site.rglob("*.css")):
        offenders += [f"{css.relative_to(site)}: {u}" for u in _css_urls(css.read_text("utf-8", "replace"))
                      if EXTERNAL.match(u)]
    assert not offenders, "the site loads assets from the network:\n" + "\n".join(offenders[:20])


def test_mathjax_is_bundled(site):
    html = (site / "chapters" / "00_bayesian_learning.html").read_text(encoding="utf-8")
    assert 'src="../_static/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"' in html
    assert (site / "_static" / "mathjax" / "MathJax.js").is_file()
    assert any((site / "_static" / "mathjax" / "fonts" / "HTML-CSS" / "STIX-Web").rglob("*.woff"))


def test_every_notebook_and_guide_has_a_page(site):
    for path in notebooks(CHAPTERS):
        assert (site / "chapters" / f"{path.stem}.html").is_file(), path.name
    for path in notebooks(SOLUTIONS):
        assert (site / "solutions" / f"{path.stem}.html").is_file(), path.name
    for path in SEMINARS:
        assert (site / "seminar" / f"{path.stem}.html").is_file(), path.name
    for page in ("index", "problem-sets", "references", "facilitators"):
        assert (site / f"{page}.html").is_file(), page


def test_exercises_are_downloads(site):
    problem_sets = (site / "problem-sets.html").read_text(encoding="utf-8")
    for path in notebooks(EXERCISES):
        # chapters/, solutions/ and exercises/ share file names: find the copy the page links to
        linked = [d for d in (site / "_downloads").glob(f"*/{path.name}")
                  if f'_downloads/{d.parent.name}/{path.name}"' in problem_sets]
        assert linked, f"{path.name} is not offered as a download on the problem-sets page"
        assert linked[0].read_bytes() == path.read_bytes()


def test_notebook_pages_have_colab_and_binder_links(site):
    for folder, kind in ((CHAPTERS, "chapters"), (SOLUTIONS, "solutions"), (EXERCISES, "problem-sets")):
        for path in notebooks(folder):
            html = (site / kind / f"{path.stem}.html").read_text(encoding="utf-8")
            rel = f"{folder.name}/{path.name}"
            assert colab.colab_link(rel, EXAMPLE_REPO) in html, f"{kind}/{path.name}: no Open in Colab link"
            assert colab.binder_link(rel, EXAMPLE_REPO).replace("&", "&amp;") in html, (
                f"{kind}/{path.name}: no Launch Binder link"
            )
    assert "slt-course/slt-course" not in (site / "index.html").read_text(encoding="utf-8")


def test_problem_set_pages_are_the_exercises(site):
    """Stubs and checks on the problem-set pages; no solution code; no nbgrader markers anywhere."""
    for path in notebooks(EXERCISES):
        html = (site / "problem-sets" / f"{path.stem}.html").read_text(encoding="utf-8")
        assert STUB_MESSAGE in html, f"problem-sets/{path.stem}: the exercise stubs are not shown"
        assert "check_" in html, f"problem-sets/{path.stem}: the check cells are not shown"
        assert f"../solutions/{path.stem}.html" in html, f"problem-sets/{path.stem}: no link to the solutions"
    for page in list((site / "solutions").glob("*.html")) + list((site / "problem-sets").glob("*.html")):
        text = page.read_text(encoding="utf-8")
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text, f"{page.name}: nbgrader markers shown"
    for path in notebooks(SOLUTIONS):
        html = (site / "solutions" / f"{path.stem}.html").read_text(encoding="utf-8")
        assert re.search(r"<h1>[^<]* — solutions", html), f"solutions/{path.stem}: the title does not say solutions"
        assert "worked solutions" in html and f"../problem-sets/{path.stem}.html" in html, (
            f"solutions/{path.stem}: not labelled as solutions with a link to the problem set"
        )
        assert STUB_MESSAGE not in html
    for path in SEMINARS:
        html = (site / "seminar" / f"{path.stem}.html").read_text(encoding="utf-8")
        assert "For facilitators" in html, f"seminar/{path.stem}: not marked as a facilitators' guide"


def test_without_a_public_repository_the_site_has_no_launch_links_and_says_why(tmp_path, monkeypatch, capsys):
    """Staging only (no Sphinx run): no Colab/Binder address anywhere, and the build prints why."""
    monkeypatch.setenv(colab.REPO_ENV, "")
    build = _load_build_module()
    repo = build.stage(tmp_path / "src")
    assert repo.url is None
    assert "no Colab/Binder launch links on the site" in capsys.readouterr().out
    staged = [p for p in (tmp_path / "src").rglob("*") if p.suffix in (".md", ".ipynb") and "exercises" not in p.parts]
    assert len(staged) > 20
    for page in staged:
        text = page.read_text(encoding="utf-8")
        assert "colab.research.google.com" not in text and "mybinder.org" not in text, page.name
    # the theme's own launch and repository buttons are off too
    monkeypatch.setenv("SLT_COURSE_ROOT", str(REPO))
    spec = importlib.util.spec_from_file_location("site_conf", tmp_path / "src" / "conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    assert "launch_buttons" not in conf.html_theme_options and "repository_url" not in conf.html_theme_options


def test_course_map_links_every_chapter(site):
    home = (site / "index.html").read_text(encoding="utf-8")
    for path in notebooks(CHAPTERS):
        assert f'href="chapters/{path.stem}.html"' in home, path.name


# ----------------------------------------------------------------------------- in a browser


def _chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        self.server.requested.append(self.path)


@pytest.fixture(scope="module")
def served(site):
    """The site on http://127.0.0.1:<free port>/, served from a thread; yields (base url, requests)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(site)))
    server.requested = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.requested
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Run headless Chromium offline (only 127.0.0.1 resolves); returns run(url, *flags) -> stdout."""
    chromium = _chromium()
    if chromium is None:
        pytest.skip(
            "Chromium not found (looked for " + ", ".join(CHROMIUM_NAMES) + "); install it with "
            "`apt-get install -y chromium` (.ci/run does this) to run the browser tests"
        )
    profile = tmp_path_factory.mktemp("chromium-profile")

    def run(url: str, *flags: str) -> str:
        command = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--no-first-run", "--no-default-browser-check",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--user-data-dir={profile}", "--virtual-time-budget=15000", *flags, url,
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"chromium failed ({result.returncode}):\n{result.stderr[-2000:]}"
        return result.stdout

    return run


class _Dom(HTMLParser):
    """Heading texts, MathJax output elements and images of a rendered page."""

    def __init__(self):
        super().__init__()
        self.headings: list[str] = []
        self.mathjax = 0
        self.math_errors = 0
        self.images: list[str] = []
        self._heading: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag in ("h1", "h2", "h3"):
            self._heading = []
        if "MathJax" in classes or "MathJax_Display" in classes or "MathJax_SVG" in classes:
            self.mathjax += 1
        if "MathJax_Error" in classes or "merror" in classes:
            self.math_errors += 1
        if tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])

    def handle_data(self, data):
        if self._heading is not None:
            self._heading.append(data)

    def handle_endtag(self, tag):
        if tag in ("h1", "h2", "h3") and self._heading is not None:
            self.headings.append(" ".join("".join(self._heading).replace("#", " ").split()))
            self._heading = None


def _plain_headings(path: Path) -> list[str]:
    """Markdown headings (levels 1–2) of a notebook that contain no math or markup."""
    nb = nbformat.read(path, as_version=4)
    headings = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                match = re.match(r"^#{1,2} (.+)$", line)
                if match and not re.search(r"[$`*_\[\]<>\\]", match.group(1)):
                    headings.append(" ".join(match.group(1).split()))
    return headings


@pytest.mark.parametrize("page", ["index.html", "chapters/00_bayesian_learning.html"])
def test_page_renders_offline_in_chromium(page, served, browser):
    base, requested = served
    ARTIFACTS.mkdir(exist_ok=True)
    name = "site-home" if page == "index.html" else "site-" + Path(page).stem
    screenshot = ARTIFACTS / f"{name}.png"
    screenshot.unlink(missing_ok=True)
    browser(f"{base}/{page}", f"--screenshot={screenshot}", "--window-size=1280,2000", "--hide-scrollbars")
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000, "no screenshot"

    dom = _Dom()
    dom.feed(browser(f"{base}/{page}", "--dump-dom"))
    assert dom.mathjax > 0, "no equation was rendered by MathJax"
    assert dom.math_errors == 0, f"{dom.math_errors} MathJax errors on {page}"
    assert any(r.startswith("/_static/mathjax/jax/output/HTML-CSS/fonts/STIX-Web") for r in requested), (
        "MathJax did not load its fonts from the site"
    )
    if page == "index.html":
        assert any("Course map" in h for h in dom.headings), dom.headings
        return

    notebook = CHAPTERS / "00_bayesian_learning.ipynb"
    expected = _plain_headings(notebook)
    assert len(expected) >= 3
    missing = [h for h in expected if not any(h in got for got in dom.headings)]
    assert not missing, f"headings missing from the rendered chapter: {missing}"
    figures = [s for s in dom.images if ("_images/" in s and s.endswith(".png")) or s.startswith("data:image/png")]
    assert figures, "no figure on the chapter page"
    for src in figures:
        if "_images/" in src:
            assert any(r.endswith(src.split("/")[-1]) for r in requested), f"figure {src} was not loaded"


def test_facilitators_guide_plans_a_week_per_chapter_and_links_the_guides():
    text = (REPO / "docs" / "FACILITATORS.md").read_text(encoding="utf-8")
    weeks = re.findall(r"^\| (\d+) \| (\d\d) ", text, flags=re.MULTILINE)
    chapters = sorted(p.stem[:2] for p in CHAPTERS.glob("[0-9][0-9]_*.ipynb"))
    assert weeks == [(str(k + 1), ch) for k, ch in enumerate(chapters)], "week k must be chapter k − 1, every chapter"
    for term in ("make course", "Binder", "Colab", "Roles", "Pacing"):
        assert term in text, term
    for path in SEMINARS:
        assert f"seminar/{path.stem[:2]}_" in text, f"{path.name} is not pointed to"


def test_home_page_links_every_seminar_guide(site):
    home = (site / "index.html").read_text(encoding="utf-8")
    for path in SEMINARS:
        assert f'href="seminar/{path.stem}.html"' in home, path.name
