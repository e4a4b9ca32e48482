"""Per-draw observables: functions of the sampled parameters recorded at every draw, for all chains at once.

An observable is ``f(params) -> Tensor`` of a fixed shape S, where ``params`` maps each parameter
name of the model to a tensor of its own shape (one chain; the estimator vmaps it over chains).
``estimate_llc(..., observables={"name": f})`` records it at the draws whose loss it records:
``result.observables[name]`` has shape (chains, draws, *S). :class:`SampleLosses` is the one the
course needs most — the per-sample losses ℓ_i(w) of a probe set — from which susceptibilities,
the Bayesian influence function and the loss kernel are covariances over draws.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from slt_course_utils.llc.problem import (
    Batch,
    EvaluateFn,
    LossFn,
    Problem,
    _Evaluate,
    as_batch,
    as_tensors,
    batch_to,
    split_model,
)

__all__ = ["SampleLosses", "sample_losses"]

Observable = Callable[[dict[str, Tensor]], Tensor]


class SampleLosses:
    """ℓ_i(w) for every sample i of a probe set: ``loss_fn`` (or ``evaluate``) on a batch of one sample."""

    def __init__(self, model: nn.Module, data: Any, loss_fn: LossFn | None = None, *,
                 evaluate: EvaluateFn | None = None) -> None:
        if (loss_fn is None) == (evaluate is None):
            raise TypeError("sample_losses needs exactly one of loss_fn(output, target) and "
                            "evaluate=(model, batch) -> loss.")
        self.model, self.loss_fn, self.evaluate = model, loss_fn, evaluate
        if evaluate is None:
            self.x, self.y = as_tensors(data)
        else:
            self.x, self.y = as_batch(data), None
            self.wrapper = _Evaluate(model, evaluate)
        _, self.fixed = split_model(model, next(model.parameters()).device)

    def to(self, device: torch.device) -> SampleLosses:
        """Move the probe data and the model's fixed tensors to ``device`` (in place; returns self)."""
        self.x = batch_to(self.x, device)
        self.y = None if self.y is None else self.y.to(device)
        self.fixed = {k: v.to(device) for k, v in self.fixed.items()}
        return self

    def __call__(self, params: dict[str, Tensor]) -> Tensor:
        one = _unsqueeze
        if self.evaluate is None:
            def loss_i(xi: Tensor, yi: Tensor) -> Tensor:
                return self.loss_fn(functional_call(self.model, (params, self.fixed), (one(xi),)), one(yi))

            return vmap(loss_i)(self.x, self.y)
        p = {"model." + k: v for k, v in params.items()}
        fx = {"model." + k: v for k, v in self.fixed.items()}

        def eval_i(bi: Batch) -> Tensor:
            return functional_call(self.wrapper, (p, fx), (one(bi),))

        return vmap(eval_i)(self.x)


def _unsqueeze(b: Batch) -> Batch:
    if isinstance(b, Tensor):
        return b.unsqueeze(0)
    if isinstance(b, dict):
        return {k: _unsqueeze(v) for k, v in b.items()}
    return type(b)(_unsqueeze(v) for v in b)


def sample_losses(model: nn.Module, data: Any, loss_fn: LossFn | None = None, *,
                  evaluate: EvaluateFn | None = None) -> SampleLosses:
    """An observable ℓ(w) ∈ R^{n_probe}: the loss of each sample of ``data`` alone (mean of them = L_n)."""
    return SampleLosses(model, data, loss_fn, evaluate=evaluate)


def make_observer(prob: Problem, observables: Mapping[str, Observable] | None, device: torch.device,
                  ) -> tuple[Callable[[Tensor], dict[str, Tensor]] | None, dict[str, Tensor]]:
    """(observe(rows (chains, d)) → {name: (chains, *S)}, values at w*), after checking each observable at w*."""
    if observables is None or (isinstance(observables, Mapping) and not observables):
        return None, {}
    if not isinstance(observables, Mapping) or not all(isinstance(k, str) and callable(f)
                                                        for k, f in observables.items()):
        raise TypeError("observables must be a dict name → f(params) -> Tensor (params: the model's parameter "
                        f"dict); got {type(observables).__name__}.")
    fns = {k: (f.to(device) if isinstance(f, SampleLosses) else f) for k, f in observables.items()}
    star_rows = prob.expand(prob.w_star)
    star_rows = star_rows if star_rows.ndim == 2 else star_rows.unsqueeze(0)
    star: dict[str, Tensor] = {}
    for name, f in fns.items():
        try:
            with torch.no_grad():
                v = f(prob.unflatten(star_rows[0]))
                vmap(lambda row, f=f: f(prob.unflatten(row)), randomness="different")(star_rows[:1])
        except Exception as err:  # noqa: BLE001 - re-raised with what to change
            raise TypeError(f"observable {name!r} failed at w*: {type(err).__name__}: {str(err)[:300]}. It gets the "
                            "parameter dict of ONE chain and must return a tensor, without .item() or "
                            "data-dependent Python control flow (it runs under vmap).") from err
        if not isinstance(v, Tensor):
            raise TypeError(f"observable {name!r} must return a torch tensor, got {type(v).__name__}.")
        star[name] = v.detach().double().cpu()

    batched = {name: vmap(lambda row, f=f: f(prob.unflatten(row)), randomness="different")
               for name, f in fns.items()}

    def observe(w: Tensor) -> dict[str, Tensor]:
        with torch.no_grad():
            full = prob.expand(w)
            return {name: g(full) for name, g in batched.items()}

    return observe, star
