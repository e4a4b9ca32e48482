"""Device selection: ``cuda`` > ``mps`` > ``cpu``, overridable with ``SLT_DEVICE``."""

from __future__ import annotations

import os

import torch

ENV_VAR = "SLT_DEVICE"
_VALID = ("cpu", "cuda", "mps")


def _available(kind: str) -> bool:
    if kind == "cpu":
        return True
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        return bool(mps is not None and mps.is_available())
    return False


def get_device(prefer: str | None = None, *, verbose: bool = False) -> torch.device:
    """The device to compute on: ``prefer``, else ``$SLT_DEVICE``, else cuda > mps > cpu.

    ``prefer`` (or the environment variable) may be ``"auto"``, ``"cpu"``, ``"cuda"``,
    ``"cuda:1"`` or ``"mps"``. Asking for a device that is not available raises a
    ``ValueError`` that says which devices are.
    """
    choice = prefer if prefer is not None else os.environ.get(ENV_VAR, "auto")
    choice = choice.strip().lower()
    if choice in ("", "auto"):
        kind = next(k for k in ("cuda", "mps", "cpu") if _available(k))
        device = torch.device(kind)
    else:
        kind = choice.split(":")[0]
        if kind not in _VALID:
            raise ValueError(
                f"Unknown device {choice!r}. Use one of 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
                f" (set via the argument or the {ENV_VAR} environment variable)."
            )
        if not _available(kind):
            have = [k for k in _VALID if _available(k)]
            raise ValueError(
                f"Device {choice!r} was requested but is not available on this machine; "
                f"available: {have}. Unset {ENV_VAR} or pass prefer='auto'."
            )
        device = torch.device(choice)
    if verbose:
        print(f"Using device: {device}")
    return device


def describe_device(device: torch.device) -> str:
    """A one-line human description of ``device`` (GPU name where there is one)."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({torch.get_num_threads()} threads)"
