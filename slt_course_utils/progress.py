"""Progress bars for long loops: tqdm's notebook-aware bar, silenced by ``SLT_PROGRESS=0``."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
ENV_VAR = "SLT_PROGRESS"


def progress_enabled(progress: bool | None = None) -> bool:
    """Whether to show bars: the argument if given, else ``$SLT_PROGRESS`` (default on)."""
    if progress is not None:
        return bool(progress)
    return os.environ.get(ENV_VAR, "1").strip().lower() not in ("0", "false", "no", "off")


def progress(
    iterable: Iterable[T], *, desc: str | None = None, total: int | None = None,
    enabled: bool | None = None, **kwargs,
) -> Iterator[T]:
    """Wrap ``iterable`` in a progress bar (a widget in Jupyter, text elsewhere).

    ``enabled=None`` follows ``$SLT_PROGRESS``; tests and CI set it to ``0`` so stored
    notebook outputs stay free of volatile timing text.
    """
    return tqdm(iterable, desc=desc, total=total, disable=not progress_enabled(enabled),
                leave=kwargs.pop("leave", False), **kwargs)
