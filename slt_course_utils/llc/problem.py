"""From (model, data, loss_fn) to a flat potential over a (chains, d) tensor of parameters.

Every chain's parameters live in one row of a ``(chains, d)`` tensor (flattened in
``named_parameters()`` order); the model sees views of a row through
``torch.func.functional_call``. :class:`Problem` holds what every kernel needs: w*, L_n(w*),
a batched loss-and-gradient function (full batch or per-chain minibatches) and a chunked
full-data loss. Input checks that need the model (shapes, dtypes, train mode, ``.item()``)
run once here, at w*, with messages that say what to change.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap
from torch.utils.data import DataLoader

LossFn = Callable[[Tensor, Tensor], Tensor]
Params = dict[str, Tensor]
#: (chains, d) positions → (losses (chains,), gradients (chains, d))
GradFn = Callable[[Tensor], tuple[Tensor, Tensor]]

#: Largest parameter count for which the exact Hessian at w* is computed (localisation check).
MAX_HESSIAN_DIM = 2000


def as_tensors(data: Any) -> tuple[Tensor, Tensor]:
    """(inputs, targets) from a pair of tensors or a DataLoader (iterated once, in this process)."""
    if isinstance(data, DataLoader):
        xs, ys = [], []
        for batch in data:  # workers (if any) are the loader's own; nothing is pickled by us
            if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                raise ValueError(
                    "Each batch of the DataLoader must be a pair (inputs, targets), e.g. from a "
                    f"TensorDataset(X, Y); got {type(batch).__name__}."
                )
            xs.append(torch.as_tensor(batch[0]))
            ys.append(torch.as_tensor(batch[1]))
        if not xs:
            raise ValueError("The DataLoader yielded no batches; the LLC needs at least two samples.")
        x, y = torch.cat(xs), torch.cat(ys)
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
        if not isinstance(x, Tensor) or not isinstance(y, Tensor):
            raise ValueError("data must be a pair of torch tensors (inputs, targets) or a DataLoader.")
    else:
        raise ValueError(
            "data must be a pair of tensors (inputs, targets) or a torch DataLoader yielding such "
            f"pairs; got {type(data).__name__}."
        )
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError("inputs and targets need a leading sample dimension (got a 0-d tensor).")
    if len(x) != len(y):
        raise ValueError(
            f"inputs have {len(x)} samples but targets have {len(y)}; they must match along dim 0."
        )
    if len(x) == 0:
        raise ValueError("data is empty; the LLC needs at least two samples.")
    return x, y


def split_model(model: nn.Module, device: torch.device) -> tuple[Params, Params]:
    """(sampled parameters, fixed tensors): trainable parameters vs frozen ones and buffers."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    params = {k: v.detach().to(device).clone() for k, v in model.named_parameters() if v.requires_grad}
    if not params:
        raise ValueError("model has no trainable parameters (requires_grad=True); nothing to sample. "
                         "Pass a model with at least one nn.Parameter.")
    fixed = {k: v.detach().to(device) for k, v in model.named_parameters() if not v.requires_grad}
    fixed.update({k: v.detach().to(device) for k, v in model.named_buffers()})
    return params, fixed


def check_model_mode(model: nn.Module) -> None:
    """BatchNorm/Dropout in train mode cannot be sampled (they mutate state or draw random numbers)."""
    for name, mod in model.named_modules():
        if mod.training and isinstance(mod, (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)):
            raise ValueError(
                f"model contains {type(mod).__name__} ({name or 'the model'}) in train mode; its output "
                "is random or updates running statistics, so L(w) is not a function of w. Call "
                "model.eval() before estimate_llc."
            )


@dataclass
class Problem:
    """A model's loss as a function of flat parameter rows: w* (d,), L_n(w*), and batched evaluators."""

    names: list[str]
    shapes: list[torch.Size]
    numels: list[int]
    w_star: Tensor
    x: Tensor
    y: Tensor
    loss_flat: Callable[[Tensor, Tensor, Tensor], Tensor]
    chunk: int
    loss_star: float

    @property
    def d(self) -> int:
        return int(self.w_star.numel())

    @property
    def n_data(self) -> int:
        return len(self.x)

    def unflatten(self, flat: Tensor) -> Params:
        parts = torch.split(flat, self.numels)
        return {k: t.view(s) for k, t, s in zip(self.names, parts, self.shapes, strict=True)}

    def full_loss(self, w: Tensor) -> Tensor:
        """L_n(w) on all data in chunks of ``chunk`` samples; w of shape (chains, d) → (chains,), or (d,) → ()."""
        f = vmap(self.loss_flat, in_dims=(0, None, None), randomness="different") if w.ndim == 2 else self.loss_flat
        total = None
        with torch.no_grad():
            for s in range(0, self.n_data, self.chunk):
                xb, yb = self.x[s : s + self.chunk], self.y[s : s + self.chunk]
                part = f(w, xb, yb) * len(xb)
                total = part if total is None else total + part
        return total / self.n_data

    def grad_fn(self, batch_size: int | None, generator: torch.Generator, *,
                compile: bool = False) -> tuple[GradFn, Callable[[int], float]]:
        """(value_and_grad, warm_up): per-chain losses and gradients, full batch or fresh minibatches.

        ``value_and_grad(w)`` draws minibatch indices (chains, B) from ``generator`` (when
        minibatching) and returns (losses (chains,), gradients (chains, d)): one batched forward
        and one backward of the sum (the chains' losses depend on disjoint rows, so ∇Σ_c L_c has
        row c = ∇L_c; cheaper than vmap(grad) for small models, eagerly). ``compile=True`` uses
        ``torch.compile`` of vmap(grad); ``warm_up(chains)`` compiles it without touching the
        random stream and returns the seconds it took.
        """
        minibatch = batch_size is not None and batch_size < self.n_data
        in_dims = (0, 0, 0) if minibatch else (0, None, None)
        forward = vmap(self.loss_flat, in_dims=in_dims, randomness="different")
        x, y = self.x, self.y

        def core(flat: Tensor, xb: Tensor, yb: Tensor) -> tuple[Tensor, Tensor]:
            with torch.enable_grad():
                flat = flat.detach().requires_grad_(True)
                losses = forward(flat, xb, yb)
                (grads,) = torch.autograd.grad(losses.sum(), flat)
            return grads, losses.detach()

        if compile:
            from slt_course_utils.llc.compiled import _compiled_step

            core = _compiled_step(self.loss_flat, in_dims, core)

        def value_and_grad(w: Tensor) -> tuple[Tensor, Tensor]:
            if minibatch:
                idx = torch.randint(0, len(x), (w.shape[0], batch_size), generator=generator, device=w.device)
                grads, losses = core(w, _gather(x, idx), _gather(y, idx))
            else:
                grads, losses = core(w, x, y)
            return losses, grads

        def warm_up(chains: int) -> float:
            t0 = time.perf_counter()
            w = self.w_star.unsqueeze(0).repeat(chains, 1)
            if minibatch:  # gathered like the real minibatches, so the compiled guards match them
                idx0 = torch.arange(batch_size, device=w.device).expand(chains, batch_size)
                core(w, _gather(x, idx0), _gather(y, idx0))
            else:
                core(w, x, y)
            return time.perf_counter() - t0

        return value_and_grad, warm_up

    def hessian_eigenvalues(self) -> Tensor:
        """Eigenvalues of the Hessian of L_n at w* (float64, ascending), summed over data chunks."""
        hess = torch.zeros(self.d, self.d, dtype=self.w_star.dtype, device=self.w_star.device)
        for s in range(0, self.n_data, self.chunk):
            xb, yb = self.x[s : s + self.chunk], self.y[s : s + self.chunk]
            hess = hess + torch.func.hessian(self.loss_flat)(self.w_star, xb, yb) * len(xb)
        hess = (hess / self.n_data).double().cpu()
        return torch.linalg.eigvalsh(0.5 * (hess + hess.T))

    def mean_curvature_hutchinson(self, generator: torch.Generator, probes: int = 4) -> float:
        """tr(H)/d at w* by Hutchinson's estimator E[vᵀHv], Rademacher v (cheap for big d)."""
        def g(w: Tensor) -> Tensor:
            return torch.func.grad(self.loss_flat)(w, self.x, self.y)

        acc = 0.0
        for _ in range(probes):
            v = (torch.randint(0, 2, self.w_star.shape, generator=generator, device=self.w_star.device) * 2 - 1)
            v = v.to(self.w_star.dtype)
            _, hv = torch.func.jvp(g, (self.w_star,), (v,))
            acc += float((hv * v).sum())
        return acc / probes / self.d


def _gather(t: Tensor, idx: Tensor) -> Tensor:
    """t[idx] for idx (chains, B): the same values, by one index_select (3× faster than advanced indexing on CPU)."""
    return t.index_select(0, idx.reshape(-1)).view(*idx.shape, *t.shape[1:])


def _loss_message(err: Exception) -> str:
    text = str(err)
    if "item()" in text or ".item" in text or "data-dependent" in text or "Tensor.item" in text:
        return ("loss_fn calls .item() (or turns a tensor into a Python number); the sampler evaluates it "
                "for all chains at once, so it must return a tensor: don't call .item() or float() inside "
                "loss_fn.")
    if "randomness" in text:
        return "the model draws random numbers (e.g. Dropout in train mode): call model.eval() first."
    if "mutate" in text or "captured" in text:
        return ("the model mutates a buffer during the forward pass (e.g. BatchNorm in train mode): call "
                "model.eval() first.")
    return ""


def build_problem(model: nn.Module, x: Tensor, y: Tensor, loss_fn: LossFn, device: torch.device,
                  chunk: int) -> Problem:
    """Move data and w* to ``device``, check loss_fn once at w*, and return the flat :class:`Problem`."""
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(output, target), got {type(loss_fn).__name__}.")
    check_model_mode(model)
    params, fixed = split_model(model, device)
    x, y = x.to(device), y.to(device)
    p_dtype = next(iter(params.values())).dtype
    if x.is_floating_point() and x.dtype != p_dtype:
        raise TypeError(
            f"the model's parameters are {p_dtype} but the inputs are {x.dtype}; convert one of them, "
            f"e.g. x.to({p_dtype}) or model.to({x.dtype})."
        )
    names = list(params)
    shapes = [params[k].shape for k in names]
    numels = [params[k].numel() for k in names]
    w_star = torch.cat([params[k].reshape(-1) for k in names])

    def loss_flat(flat: Tensor, xb: Tensor, yb: Tensor) -> Tensor:
        parts = torch.split(flat, numels)
        p = {k: t.view(s) for k, t, s in zip(names, parts, shapes, strict=True)}
        return loss_fn(functional_call(model, (p, fixed), (xb,)), yb)

    with torch.no_grad():
        try:
            out = functional_call(model, (params, fixed), (x[: min(len(x), chunk)],))
        except (RuntimeError, TypeError) as err:
            raise TypeError(f"model(inputs) failed at w*: {type(err).__name__}: {str(err)[:300]}. Check "
                            "that the inputs have the shape and dtype the model expects.") from err
    if isinstance(out, Tensor) and y.is_floating_point() and out.shape != y[: len(out)].shape:
        _check_broadcast(out.shape, y[: len(out)].shape)
    with torch.no_grad():
        try:
            first = loss_flat(w_star, x[:chunk], y[:chunk])
        except Exception as err:  # noqa: BLE001 - re-raised with what to change
            hint = _loss_message(err)
            raise TypeError(hint or (
                f"loss_fn(model(inputs), targets) failed at w*: {type(err).__name__}: {str(err)[:300]}. It "
                "must take (output, target) tensors and return the mean loss as a 0-d tensor (dtypes "
                "matching, e.g. integer class targets for cross-entropy)."
            )) from err
    if not isinstance(first, Tensor):
        raise TypeError(f"loss_fn must return a torch tensor (the mean loss over the batch), got "
                        f"{type(first).__name__}; don't call .item() or float() inside loss_fn.")
    prob = Problem(names, shapes, numels, w_star, x, y, loss_flat, chunk, math.nan)
    if first.ndim != 0:
        raise ValueError(
            f"loss_fn must return the mean loss over the batch (a scalar); got shape "
            f"{tuple(first.shape)}. Use reduction='mean'."
        )
    try:
        loss_star_t = prob.full_loss(w_star)
        prob.full_loss(w_star.unsqueeze(0))  # vmap-able (all chains at once)?
    except Exception as err:  # noqa: BLE001 - re-raised with what to change
        hint = _loss_message(err)
        raise TypeError(hint or f"loss_fn cannot be evaluated for all chains at once (vmap): "
                        f"{type(err).__name__}: {str(err)[:300]}.") from err
    loss_star = float(loss_star_t)
    if not math.isfinite(loss_star):
        raise ValueError(f"L(w*) = {loss_star} is not finite; check the model, data and loss_fn.")
    prob.loss_star = loss_star
    return prob


def _check_broadcast(out_shape: torch.Size, y_shape: torch.Size) -> None:
    """Reject output/target shapes that broadcast into an outer product (e.g. (n, 1) against (n,))."""
    try:
        both = torch.broadcast_shapes(out_shape, y_shape)
    except RuntimeError:
        both = None
    if both is None or math.prod(both) > max(math.prod(out_shape), math.prod(y_shape)):
        hint = ("reshape them to match, e.g. y.view(-1, 1) for outputs (n, 1)"
                if math.prod(out_shape) == math.prod(y_shape) else "pass targets of the output's shape")
        raise ValueError(
            f"model output has shape {tuple(out_shape)} but the targets have shape {tuple(y_shape)}; "
            f"torch would broadcast them into a wrong loss: {hint}."
        )


def is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)
