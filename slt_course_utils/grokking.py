"""Modular addition with a small MLP: memorisation, then generalisation (grokking), on a CPU in seconds.

Task: (a, b) ↦ (a + b) mod p for all p² pairs, a random ``train_frac`` of them for training. Model
(after devinterp's grokking example and Panickssery & Vaintrob's post on the learning coefficient of
modular addition): one shared embedding E ∈ R^{p×e}, f(a, b) = W_out · GELU(W_l E_a + b_l + W_r E_b + b_r),
d = pe + 2(eh + h) + hp parameters (p = 53, e = 12, h = 48: d = 4 428). Trained full batch by AdamW
with decoupled weight decay 1 (Loshchilov & Hutter 2019): the train loss reaches ≈ 0 within ~1 000
steps while the test accuracy stays near chance (memorisation), and the test accuracy rises to
> 95% between ~1 500 and ~3 000 steps (generalisation; Power et al. 2022, arXiv 2201.02177).
Weight decay is what makes the generalising solution win: it keeps shrinking the weights once the
train loss is ≈ 0 (Liu et al., "Omnigrok", arXiv 2210.01117).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from slt_course_utils._validate import nonnegative_float, positive_float, positive_int
from slt_course_utils.progress import progress as _progress

__all__ = ["ModularMLP", "GrokkingRun", "modular_addition_data", "train_modular_addition"]


def modular_addition_data(p: int = 53, train_frac: float = 0.4, *, seed: int = 0) -> dict[str, Tensor]:
    """All pairs (a, b) ∈ Z_p² with labels (a + b) mod p, split at random: {x_train, y_train, x_test, y_test}."""
    p = positive_int("p", p)
    if p < 2:
        raise ValueError(f"p must be at least 2, got {p}.")
    train_frac = positive_float("train_frac", train_frac)
    if not train_frac < 1:
        raise ValueError(f"train_frac must lie strictly between 0 and 1, got {train_frac}.")
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    x = torch.stack([a.flatten(), b.flatten()], 1)
    y = x.sum(1) % p
    perm = torch.randperm(p * p, generator=torch.Generator().manual_seed(seed))
    n = int(train_frac * p * p)
    if n < 2 or n > p * p - 1:
        raise ValueError(f"train_frac = {train_frac} leaves {n} training pairs of {p * p}; choose it so both sets "
                         "have at least one pair (and the training set two).")
    tr, te = perm[:n], perm[n:]
    return {"x_train": x[tr], "y_train": y[tr], "x_test": x[te], "y_test": y[te]}


class ModularMLP(nn.Module):
    """f(a, b) = W_out · GELU(W_l E_a + b_l + W_r E_b + b_r): logits over Z_p (embedding shared by a and b)."""

    def __init__(self, p: int = 53, embed_dim: int = 12, hidden: int = 48) -> None:
        super().__init__()
        self.p = positive_int("p", p)
        self.embedding = nn.Embedding(self.p, positive_int("embed_dim", embed_dim))
        self.left = nn.Linear(embed_dim, positive_int("hidden", hidden))
        self.right = nn.Linear(embed_dim, hidden)
        self.out = nn.Linear(hidden, self.p, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 1 or x.shape[-1] != 2 or x.is_floating_point():
            raise ValueError(f"ModularMLP takes integer pairs of shape (..., 2), got {tuple(x.shape)} {x.dtype}.")
        h = self.left(self.embedding(x[..., 0])) + self.right(self.embedding(x[..., 1]))
        return self.out(F.gelu(h))


@dataclass
class GrokkingRun:
    """Checkpoints (models) at ``steps`` and the train/test loss and accuracy there."""

    steps: list[int]
    checkpoints: list[ModularMLP]
    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)


def train_modular_addition(data: dict[str, Tensor], steps: list[int] | tuple[int, ...], *, p: int = 53,
                           embed_dim: int = 12, hidden: int = 48, lr: float = 3e-3, weight_decay: float = 1.0,
                           seed: int = 0, progress: bool | None = None) -> GrokkingRun:
    """AdamW (β = (0.9, 0.98)), full batch, cross-entropy; a copy of the model at every step in ``steps``."""
    steps = sorted({positive_int("each checkpoint step", s) for s in steps})
    if not steps:
        raise ValueError("steps must name at least one training step at which to keep a checkpoint.")
    lr = positive_float("lr", lr)
    weight_decay = nonnegative_float("weight_decay", weight_decay)
    torch.manual_seed(seed)
    model = ModularMLP(p, embed_dim, hidden)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    xtr, ytr, xte, yte = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
    run = GrokkingRun(steps, [])
    keep = set(steps)
    for t in _progress(range(1, steps[-1] + 1), desc="training", enabled=progress):
        opt.zero_grad()
        F.cross_entropy(model(xtr), ytr).backward()
        opt.step()
        if t in keep:
            run.checkpoints.append(copy.deepcopy(model))
            with torch.no_grad():
                otr, ote = model(xtr), model(xte)
            run.train_loss.append(float(F.cross_entropy(otr, ytr)))
            run.test_loss.append(float(F.cross_entropy(ote, yte)))
            run.train_acc.append(float((otr.argmax(-1) == ytr).double().mean()))
            run.test_acc.append(float((ote.argmax(-1) == yte).double().mean()))
    return run
