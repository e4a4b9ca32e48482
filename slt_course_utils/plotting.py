"""The course's plotting house style (seaborn on matplotlib) and small figure helpers."""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from slt_course_utils._validate import finite_float, positive_float

#: Colours used consistently across the course (seaborn's colour-blind palette).
PALETTE = sns.color_palette("colorblind")
#: Figure resolution for notebooks: small stored outputs, still crisp on screen.
NOTEBOOK_DPI = 80


def set_style(*, dpi: int = NOTEBOOK_DPI, context: str = "notebook") -> None:
    """Apply the course style: seaborn ``ticks``, colour-blind palette, modest DPI."""
    dpi = positive_float("dpi", dpi)
    sns.set_theme(context=context, style="ticks", palette=PALETTE)
    mpl.rcParams.update(
        {
            "figure.dpi": dpi,
            "savefig.dpi": dpi,
            "figure.figsize": (6.4, 4.0),
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titleweight": "bold",
            "axes.grid": True,
            "grid.alpha": 0.3,
            "legend.frameon": False,
            "image.cmap": "viridis",
        }
    )


def labelled(ax: plt.Axes, title: str, xlabel: str, ylabel: str) -> plt.Axes:
    """Set a title and both axis labels at once (every course figure has all three)."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax


def plot_density_2d(
    ax: plt.Axes,
    grid_x: np.ndarray,
    grid_y: np.ndarray,
    density: np.ndarray,
    *,
    levels: int = 20,
    cmap: str = "viridis",
) -> mpl.contour.QuadContourSet:
    """Filled contours of ``density`` (shape ``(len(grid_x), len(grid_y))``) on ``ax``."""
    density = np.asarray(density)
    if density.shape != (len(grid_x), len(grid_y)):
        raise ValueError(
            f"density has shape {density.shape}, expected (len(grid_x), len(grid_y)) = "
            f"({len(grid_x)}, {len(grid_y)})."
        )
    return ax.contourf(np.asarray(grid_x), np.asarray(grid_y), density.T, levels=levels, cmap=cmap)


def annotate_free_energy(ax: plt.Axes, free_energy: float) -> None:
    """Write "F_n = …" in a white box in the top-left corner of ``ax``."""
    free_energy = finite_float("free_energy (a NaN or infinite F_n is a bug upstream, not a label)", free_energy)
    ax.text(0.02, 0.95, f"F_n = {free_energy:.2f}", transform=ax.transAxes, fontsize=9, va="top",
            bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"})


def save_figure(fig: plt.Figure, path: str | Path) -> Path:
    """Save ``fig`` as a PNG at the course DPI, creating the folder; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    return path
