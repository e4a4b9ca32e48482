"""``torch.compile`` of the per-step gradient (``estimate_llc(compile=True)``), with an eager fallback."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor
from torch.func import grad_and_value, vmap


def _compiled_step(loss_flat: Callable, in_dims: tuple, eager: Callable) -> Callable:
    """``torch.compile`` of vmap(grad_and_value(loss)) over chains, falling back to ``eager``.

    Compilation costs a few seconds once per (model, chains, batch) shape and then removes the
    per-step framework overhead (measured 3× fewer seconds per step for a 64-chain TMS on one
    CPU thread). If compilation fails (no C++ compiler, an unsupported model), a warning says so
    and the eager step is used. Compiling resets torch's compile caches (``torch._dynamo.reset``).
    """
    # torch.compile caches by code object, and every run builds the same functorch wrapper:
    # without a reset, earlier runs' entries pile up until dynamo's recompile limit silently
    # sends later runs back to eager.
    torch._dynamo.reset()
    compiled = torch.compile(vmap(grad_and_value(loss_flat), in_dims=in_dims), dynamic=False)
    state = {"fn": compiled}

    def step(flat: Tensor, xb: Tensor, yb: Tensor) -> tuple[Tensor, Tensor]:
        if state["fn"] is compiled:
            try:
                return compiled(flat, xb, yb)
            except Exception as err:  # noqa: BLE001 - any compiler failure falls back to eager
                warnings.warn(f"compile=True failed ({type(err).__name__}: {str(err)[:200]}); "
                              "running the eager sampler instead.", stacklevel=3)
                state["fn"] = eager
        return state["fn"](flat, xb, yb)

    return step
