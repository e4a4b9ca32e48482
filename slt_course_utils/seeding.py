"""Reproducible randomness: one call seeds Python, NumPy and torch."""

from __future__ import annotations

import random

import numpy as np
import torch


def set_seed(seed: int) -> None:
    """Seed ``random``, ``numpy`` and ``torch`` (all devices).

    For numbers that do not depend on what else has consumed the global stream, use
    :func:`make_generator` and pass it on, e.g. ``torch.randn(3, generator=g)``.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r} ({type(seed).__name__}).")
    if not 0 <= int(seed) < 2**63:
        raise ValueError(f"seed must be in [0, 2**63), got {seed}.")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeding the legacy global stream is the point
    torch.manual_seed(seed)


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` seeded with ``seed`` (global state untouched)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r} ({type(seed).__name__}).")
    return torch.Generator(device=device).manual_seed(int(seed))
