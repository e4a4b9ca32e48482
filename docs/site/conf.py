"""Sphinx configuration of the course website (built by ``make site``, see docs/site/build.py).

The build stages the course into ``_build/site-src`` (this file included) and runs Sphinx there;
build.py passes the repository root in SLT_COURSE_ROOT. Everything the pages load (theme,
MathJax 2 with its fonts, CSS) is served from the site itself: nothing is fetched from the network.
"""

import importlib.util
import os
from pathlib import Path

# build.py says where the repository is; reading conf.py in docs/site, it is two folders up.
REPO = Path(os.environ.get("SLT_COURSE_ROOT") or Path(__file__).resolve().parents[2])
# slt_course_utils/colab.py by path: importing the package would import torch (seconds per process).
_spec = importlib.util.spec_from_file_location("slt_course_colab", REPO / "slt_course_utils" / "colab.py")
colab = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(colab)

project = "SLT Course"
author = "SLT Course authors"
copyright = "SLT Course authors"
html_title = "SLT Course — Singular Learning Theory, hands-on"

extensions = ["myst_nb", "sphinx.ext.mathjax"]
# exercises/ holds the problem sets as downloads (byte for byte); their pages are problem-sets/*.
exclude_patterns = ["_build", "exercises/**", "**.ipynb_checkpoints", "build.py"]

# Notebooks are stored with their outputs (make execute): render them, never run them.
nb_execution_mode = "off"
nb_merge_streams = True
# No ipywidgets JavaScript from a CDN: widget outputs are replaced by a note at staging.
nb_ipywidgets_js = {}
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

# MathJax 2, bundled: the build copies jupyter-server-mathjax's static files to _static/mathjax.
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
mathjax2_config = {
    "tex2jax": {
        "inlineMath": [["\\(", "\\)"]],
        "displayMath": [["\\[", "\\]"]],
        "processEscapes": True,
        "ignoreClass": "document",
        "processClass": "math|output_area",
    },
    "HTML-CSS": {"availableFonts": [], "webFont": "STIX-Web", "imageFont": None},
    "menuSettings": {"zoom": "None"},
    "showMathMenu": False,
    "messageStyle": "none",
}

html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_last_updated_fmt = None
# Launch buttons and the repository button only for a public GitHub repository (build.py passes
# the one it found in SLT_COURSE_REPO; empty: none, and the site has no launch buttons).
_repo = colab.course_repository(REPO)
html_theme_options = {
    "path_to_docs": "",
    "use_download_button": True,
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
if _repo.url:
    html_theme_options |= {
        "repository_url": _repo.url,
        "repository_branch": _repo.branch,
        "use_repository_button": True,
        "launch_buttons": {
            "binderhub_url": colab.BINDER_URL,
            "colab_url": colab.COLAB_URL,
            "notebook_interface": "jupyterlab",
        },
    }
