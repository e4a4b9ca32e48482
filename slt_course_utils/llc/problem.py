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
#: ``evaluate(model, batch) -> mean loss`` (0-d), batch a slice of the data's structure along dim 0.
EvaluateFn = Callable[[nn.Module, Any], Tensor]
Params = dict[str, Tensor]
#: A Tensor, or a tuple/list/dict of tensors sharing their leading (sample) dimension.
Batch = Any
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


def batch_len(b: Batch) -> int:
    """The leading dimension shared by every tensor of a batch structure."""
    if isinstance(b, Tensor):
        return len(b)
    leaves = list(b.values()) if isinstance(b, dict) else list(b)
    return batch_len(leaves[0])


def take(b: Batch, idx: Tensor | slice) -> Batch:
    """``b[idx]`` for a Tensor or a tuple/list/dict of tensors (indexing dim 0 of each)."""
    if isinstance(b, Tensor):
        return _gather(b, idx) if isinstance(idx, Tensor) and not idx.dtype == torch.bool else b[idx]
    if isinstance(b, dict):
        return {k: take(v, idx) for k, v in b.items()}
    return type(b)(take(v, idx) for v in b)


def batch_to(b: Batch, device: torch.device) -> Batch:
    if isinstance(b, Tensor):
        return b.to(device)
    if isinstance(b, dict):
        return {k: batch_to(v, device) for k, v in b.items()}
    return type(b)(batch_to(v, device) for v in b)


def as_batch(data: Any) -> Batch:
    """Check that ``data`` (for ``evaluate``) is a Tensor or a tuple/list/dict of tensors with one length n > 0."""
    def leaves(b: Any, where: str) -> list[tuple[str, Tensor]]:
        if isinstance(b, Tensor):
            return [(where, b)]
        if isinstance(b, dict) and b:
            return [leaf for k, v in b.items() for leaf in leaves(v, f"{where}[{k!r}]")]
        if isinstance(b, (tuple, list)) and b:
            return [leaf for i, v in enumerate(b) for leaf in leaves(v, f"{where}[{i}]")]
        raise ValueError(
            "with evaluate=, data must be a tensor or a (nested) tuple/list/dict of tensors that share "
            f"their leading sample dimension; {where} is {type(b).__name__}{' (empty)' if not isinstance(b, Tensor) and hasattr(b, '__len__') and not len(b) else ''}."
        )
    found = leaves(data, "data")
    lengths = {w: (len(t) if t.ndim else None) for w, t in found}
    if None in lengths.values():
        raise ValueError("every tensor of data needs a leading sample dimension (got a 0-d tensor).")
    if len(set(lengths.values())) != 1:
        raise ValueError(f"the tensors of data must share their leading (sample) dimension; got {lengths}.")
    if next(iter(lengths.values())) == 0:
        raise ValueError("data is empty; the LLC needs at least two samples.")
    return data


@dataclass
class Problem:
    """A model's loss as a function of flat parameter rows: w* (d,), L_n(w*), and batched evaluators.

    ``names/shapes/numels`` describe the model's full parameter vector (``named_parameters()``
    order); ``w_star`` holds the *sampled* coordinates only. With ``restrict`` these are the
    entries ``free`` of the full vector and every other entry stays at ``base`` (the full w*,
    (d_full,), or one row per chain (chains, d_full) for a trajectory of checkpoints).
    ``loss_flat(full, xb, yb)`` is the mean loss of one full parameter vector on a batch
    (``yb`` is None when the loss is given as ``evaluate(model, batch)``).
    """

    names: list[str]
    shapes: list[torch.Size]
    numels: list[int]
    w_star: Tensor
    x: Batch
    y: Tensor | None
    loss_flat: Callable[[Tensor, Batch, Tensor | None], Tensor]
    chunk: int
    loss_star: float
    free: Tensor | None = None
    base: Tensor | None = None

    @property
    def d(self) -> int:
        return int(self.w_star.shape[-1])

    @property
    def n_data(self) -> int:
        return batch_len(self.x)

    def expand(self, w: Tensor) -> Tensor:
        """Sampled coordinates (…, d) → full parameter vectors (…, d_full); identity without ``restrict``."""
        if self.free is None:
            return w
        if w.ndim == 1:
            base = self.base if self.base.ndim == 1 else self.base[0]
            return base.index_copy(0, self.free, w)
        base = self.base.expand(w.shape[0], -1) if self.base.ndim == 1 else self.base
        return base.index_copy(1, self.free, w)

    def unflatten(self, flat: Tensor) -> Params:
        """A full parameter vector (d_full,) → {name: tensor of the parameter's shape}."""
        parts = torch.split(flat, self.numels)
        return {k: t.view(s) for k, t, s in zip(self.names, parts, self.shapes, strict=True)}

    def _chunks(self):
        for s in range(0, self.n_data, self.chunk):
            xb = take(self.x, slice(s, s + self.chunk))
            yb = None if self.y is None else self.y[s : s + self.chunk]
            yield xb, yb, batch_len(xb)

    def full_loss(self, w: Tensor) -> Tensor:
        """L_n(w) on all data in chunks of ``chunk`` samples; w of shape (chains, d) → (chains,), or (d,) → ()."""
        f = vmap(self.loss_flat, in_dims=(0, None, None), randomness="different") if w.ndim == 2 else self.loss_flat
        total = None
        with torch.no_grad():
            full = self.expand(w)
            for xb, yb, m in self._chunks():
                part = f(full, xb, yb) * m
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
        y_dim = None if self.y is None or not minibatch else 0
        in_dims = (0, 0 if minibatch else None, y_dim)
        forward = vmap(self.loss_flat, in_dims=in_dims, randomness="different")
        x, y = self.x, self.y

        def core(flat: Tensor, xb: Batch, yb: Tensor | None) -> tuple[Tensor, Tensor]:
            with torch.enable_grad():
                flat = flat.detach().requires_grad_(True)
                losses = forward(self.expand(flat), xb, yb)
                (grads,) = torch.autograd.grad(losses.sum(), flat)
            return grads, losses.detach()

        if compile and self.free is None:
            from slt_course_utils.llc.compiled import _compiled_step

            core = _compiled_step(self.loss_flat, in_dims, core)
        elif compile:
            import warnings

            warnings.warn("compile=True is not supported with restrict (or a trajectory of checkpoints "
                          "with restrict); running the eager sampler.", stacklevel=3)

        def value_and_grad(w: Tensor) -> tuple[Tensor, Tensor]:
            if minibatch:
                idx = torch.randint(0, batch_len(x), (w.shape[0], batch_size), generator=generator, device=w.device)
                grads, losses = core(w, take(x, idx), None if y is None else _gather(y, idx))
            else:
                grads, losses = core(w, x, y)
            return losses, grads

        def warm_up(chains: int) -> float:
            t0 = time.perf_counter()
            w = self.w_star.unsqueeze(0).repeat(chains, 1) if self.w_star.ndim == 1 else self.w_star
            if minibatch:  # gathered like the real minibatches, so the compiled guards match them
                idx0 = torch.arange(batch_size, device=w.device).expand(chains, batch_size)
                core(w, take(x, idx0), None if y is None else _gather(y, idx0))
            else:
                core(w, x, y)
            return time.perf_counter() - t0

        return value_and_grad, warm_up

    def _reduced_loss(self) -> Callable[[Tensor, Batch, Tensor | None], Tensor]:
        if self.free is None:
            return self.loss_flat
        return lambda w, xb, yb: self.loss_flat(self.expand(w), xb, yb)

    def hessian_eigenvalues(self) -> Tensor:
        """Eigenvalues of the Hessian of L_n at w* (float64, ascending), summed over data chunks."""
        loss = self._reduced_loss()
        hess = torch.zeros(self.d, self.d, dtype=self.w_star.dtype, device=self.w_star.device)
        for xb, yb, m in self._chunks():
            hess = hess + torch.func.hessian(loss)(self.w_star, xb, yb) * m
        hess = (hess / self.n_data).double().cpu()
        return torch.linalg.eigvalsh(0.5 * (hess + hess.T))

    def mean_curvature_hutchinson(self, generator: torch.Generator, probes: int = 4) -> float:
        """tr(H)/d at w* by Hutchinson's estimator E[vᵀHv], Rademacher v (cheap for big d)."""
        loss = self._reduced_loss()

        def g(w: Tensor) -> Tensor:
            return torch.func.grad(loss)(w, self.x, self.y)

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


class _Evaluate(nn.Module):
    """``evaluate(model, batch)`` as a module, so that ``functional_call`` can swap the model's parameters."""

    def __init__(self, model: nn.Module, evaluate: EvaluateFn) -> None:
        super().__init__()
        self.model = model
        self._evaluate = evaluate

    def forward(self, batch: Batch) -> Tensor:
        return self._evaluate(self.model, batch)


def free_indices(names: list[str], shapes: list[torch.Size], restrict: Any) -> Tensor:
    """Indices into the full flat parameter vector of the coordinates that ``restrict`` selects.

    ``restrict``: parameter names (a module prefix such as ``"layers.0"`` selects all of its
    parameters) or a dict name → bool mask of that parameter's shape.
    """
    numels = [math.prod(s) for s in shapes]
    offsets = np.cumsum([0, *numels])
    masks: dict[str, Tensor] = {}
    if isinstance(restrict, dict):
        for key, m in restrict.items():
            if key not in names:
                raise ValueError(f"restrict names {key!r}, which is not a trainable parameter of the model; "
                                 f"its parameters are {names}.")
            shape = shapes[names.index(key)]
            m = torch.as_tensor(m)
            if m.dtype != torch.bool or tuple(m.shape) != tuple(shape):
                raise ValueError(f"restrict[{key!r}] must be a bool mask of the parameter's shape "
                                 f"{tuple(shape)}; got dtype {m.dtype}, shape {tuple(m.shape)}.")
            masks[key] = m.reshape(-1).cpu()
    elif isinstance(restrict, (list, tuple)) and restrict and all(isinstance(k, str) for k in restrict):
        for key in restrict:
            hit = [k for k in names if k == key or k.startswith(key + ".")]
            if not hit:
                raise ValueError(f"restrict names {key!r}, which matches no trainable parameter (nor module "
                                 f"prefix) of the model; its parameters are {names}.")
            for k in hit:
                masks[k] = torch.ones(numels[names.index(k)], dtype=torch.bool)
    else:
        raise TypeError("restrict must be a non-empty list of parameter names (or module prefixes) or a dict "
                        f"name → bool mask; got {type(restrict).__name__}.")
    idx = [torch.nonzero(m).flatten() + int(offsets[names.index(k)]) for k, m in masks.items()]
    free = torch.unique(torch.cat(idx)) if idx else torch.zeros(0, dtype=torch.long)
    if free.numel() == 0:
        raise ValueError("restrict selects no coordinates (every mask is False); select at least one.")
    return free


def _refers_to_model(fn: Any, model: nn.Module) -> str | None:
    """Name of a model / submodule / parameter that ``fn`` captures (closure, defaults, globals), else None."""
    mods = {id(m) for m in model.modules()}
    params = {id(p) for p in model.parameters()}
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    seen: list[tuple[str, Any]] = []
    for name, cell in zip(code.co_freevars, getattr(fn, "__closure__", None) or (), strict=False):
        try:
            seen.append((name, cell.cell_contents))
        except ValueError:
            continue
    seen += [(n, getattr(fn, "__globals__", {}).get(n)) for n in code.co_names]
    seen += [("a default argument", v) for v in (getattr(fn, "__defaults__", None) or ())]
    for name, obj in seen:
        if id(obj) in mods or id(obj) in params:
            return name
        if isinstance(obj, (list, tuple)) and any(id(o) in params or id(o) in mods for o in obj):
            return name
    return None


def build_problem(model: nn.Module, x: Batch, y: Tensor | None, loss_fn: LossFn | None, device: torch.device,
                  chunk: int, *, evaluate: EvaluateFn | None = None, restrict: Any = None) -> Problem:
    """Move data and w* to ``device``, check the loss once at w*, and return the flat :class:`Problem`.

    The loss is ``loss_fn(model(x), y)`` or, with ``evaluate``, ``evaluate(model, x)`` (``y`` None).
    """
    if evaluate is None and not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(output, target), got {type(loss_fn).__name__}.")
    if evaluate is not None and not callable(evaluate):
        raise TypeError(f"evaluate must be callable as evaluate(model, batch), got {type(evaluate).__name__}.")
    check_model_mode(model)
    params, fixed = split_model(model, device)
    x = batch_to(x, device)
    y = None if y is None else y.to(device)
    p_dtype = next(iter(params.values())).dtype
    if isinstance(x, Tensor) and x.is_floating_point() and x.dtype != p_dtype:
        raise TypeError(
            f"the model's parameters are {p_dtype} but the inputs are {x.dtype}; convert one of them, "
            f"e.g. x.to({p_dtype}) or model.to({x.dtype})."
        )
    names = list(params)
    shapes = [params[k].shape for k in names]
    numels = [params[k].numel() for k in names]
    w_full = torch.cat([params[k].reshape(-1) for k in names])
    if loss_fn is not None and evaluate is None:
        captured = _refers_to_model(loss_fn, model)
        if captured is not None:
            import warnings

            warnings.warn(
                f"loss_fn refers to the model or its parameters ({captured}); the sampler moves copies of the "
                "parameters, so anything loss_fn reads from the model itself is frozen at w* (e.g. a weight "
                "penalty would not move). Put such terms in evaluate(model, batch) instead, which sees the "
                "sampled parameters.", stacklevel=3)

    if evaluate is None:
        def loss_flat(flat: Tensor, xb: Batch, yb: Tensor | None) -> Tensor:
            parts = torch.split(flat, numels)
            p = {k: t.view(s) for k, t, s in zip(names, parts, shapes, strict=True)}
            return loss_fn(functional_call(model, (p, fixed), (xb,)), yb)
    else:
        wrapper = _Evaluate(model, evaluate)
        pnames = ["model." + k for k in names]
        pfixed = {"model." + k: v for k, v in fixed.items()}

        def loss_flat(flat: Tensor, xb: Batch, yb: Tensor | None) -> Tensor:
            parts = torch.split(flat, numels)
            p = {k: t.view(s) for k, t, s in zip(pnames, parts, shapes, strict=True)}
            return functional_call(wrapper, (p, pfixed), (xb,))

    what = "evaluate(model, batch)" if evaluate is not None else "loss_fn"
    first_x = take(x, slice(0, chunk))
    if evaluate is None:
        with torch.no_grad():
            try:
                out = functional_call(model, (params, fixed), (take(x, slice(0, min(batch_len(x), chunk))),))
            except (RuntimeError, TypeError) as err:
                raise TypeError(f"model(inputs) failed at w*: {type(err).__name__}: {str(err)[:300]}. Check "
                                "that the inputs have the shape and dtype the model expects.") from err
        if isinstance(out, Tensor) and y.is_floating_point() and out.shape != y[: len(out)].shape:
            _check_broadcast(out.shape, y[: len(out)].shape)
    with torch.no_grad():
        try:
            first = loss_flat(w_full, first_x, None if y is None else y[:chunk])
        except Exception as err:  # noqa: BLE001 - re-raised with what to change
            hint = _loss_message(err)
            if evaluate is not None:
                raise TypeError(hint or (
                    f"evaluate(model, batch) failed at w*: {type(err).__name__}: {str(err)[:300]}. It must "
                    "take the model and a slice of data (same structure, fewer samples) and return the mean "
                    "loss over the batch as a 0-d tensor.")) from err
            raise TypeError(hint or (
                f"loss_fn(model(inputs), targets) failed at w*: {type(err).__name__}: {str(err)[:300]}. It "
                "must take (output, target) tensors and return the mean loss as a 0-d tensor (dtypes "
                "matching, e.g. integer class targets for cross-entropy)."
            )) from err
    if not isinstance(first, Tensor):
        raise TypeError(f"{what} must return a torch tensor (the mean loss over the batch), got "
                        f"{type(first).__name__}; don't call .item() or float() inside {what}.")
    if first.ndim != 0:
        raise ValueError(
            f"{what} must return the mean loss over the batch (a scalar); got shape "
            f"{tuple(first.shape)}. Use reduction='mean'."
        )
    prob = Problem(names, shapes, numels, w_full, x, y, loss_flat, chunk, math.nan)
    if restrict is not None:
        free = free_indices(names, shapes, restrict).to(w_full.device)
        prob.free, prob.base, prob.w_star = free, w_full, w_full[free]
    try:
        loss_star_t = prob.full_loss(prob.w_star)
        prob.full_loss(prob.w_star.unsqueeze(0))  # vmap-able (all chains at once)?
    except Exception as err:  # noqa: BLE001 - re-raised with what to change
        hint = _loss_message(err)
        raise TypeError(hint or f"{what} cannot be evaluated for all chains at once (vmap): "
                        f"{type(err).__name__}: {str(err)[:300]}.") from err
    loss_star = float(loss_star_t)
    if not math.isfinite(loss_star):
        raise ValueError(f"L(w*) = {loss_star} is not finite; check the model, data and {what}.")
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
