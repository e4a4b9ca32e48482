"""The learning coefficient from volume scaling, by Monte Carlo.

For a potential K(w) ≥ 0 (e.g. the KL divergence from the truth) and a prior φ, the volume
of the sublevel sets scales as

    V(ε) = P_φ(K(w) < ε) ≈ c ε^λ (−log ε)^(m−1)   as ε → 0,

with λ the learning coefficient and m its multiplicity. We draw w ~ φ, evaluate K once per
draw, count how many fall below each ε, and fit the straight line
log V(ε) = log c + λ log ε + (m−1) log(−log ε) on a range of small ε.

Conventions: potentials map parameters of shape ``(n, d)`` to values of shape ``(n,)``;
prior samplers are called as ``sampler(n, generator)`` and return shape ``(n, d)``; all
tensors are float64.

Cost: plain Monte Carlo sees the event {K < ε} about N·V(ε) times, so the smallest usable ε
is where N·V(ε) is a few hundred. With N ≈ 10⁶ draws that is ε ≈ 10⁻⁸ for λ = 1/2 but only
ε ≈ 10⁻⁴ for λ = 1; for λ ≳ 2 plain Monte Carlo is hopeless and one needs samplers of the
(tempered) posterior instead — which is where the LLC estimator comes in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from slt_course_utils._validate import float64_tensor, positive_float, positive_int

Potential = Callable[[Tensor], Tensor]
PriorSampler = Callable[[int, torch.Generator | None], Tensor]


_check_positive_int = positive_int


# --- Priors ------------------------------------------------------------------------------

def uniform_prior_sampler(d: int, radius: float = 1.0) -> PriorSampler:
    """Sampler of the uniform prior on the box [−radius, radius]^d, draws of shape ``(n, d)``."""
    d = _check_positive_int("d", d)
    radius = positive_float("radius", radius)

    def sample(n: int, generator: torch.Generator | None = None) -> Tensor:
        return radius * (2 * torch.rand(n, d, generator=generator, dtype=torch.float64) - 1)

    return sample


def power_prior_sampler(h: Sequence[float], radius: float = 1.0) -> PriorSampler:
    """Sampler of φ(w) ∝ Π_j |w_j|^{h_j} on [−radius, radius]^d: |w_j| = radius·U^{1/(h_j+1)}, random sign."""
    h_t = torch.as_tensor(list(h), dtype=torch.float64)
    if h_t.ndim != 1 or h_t.numel() < 1 or not torch.all(h_t > -1) or not torch.isfinite(h_t).all():
        raise ValueError(f"h must be a non-empty list of exponents > −1 (so φ is integrable), got {h!r}.")
    radius = positive_float("radius", radius)
    d = h_t.numel()

    def sample(n: int, generator: torch.Generator | None = None) -> Tensor:
        u = torch.rand(n, d, generator=generator, dtype=torch.float64)
        sign = 2 * (torch.rand(n, d, generator=generator, dtype=torch.float64) < 0.5).double() - 1
        return radius * sign * u ** (1 / (h_t + 1))

    return sample


# --- Monte Carlo volumes -----------------------------------------------------------------

def volume_samples(
    K: Potential,
    prior_sampler: PriorSampler,
    num_samples: int,
    *,
    generator: torch.Generator | None = None,
    chunk_size: int = 1 << 18,
) -> Tensor:
    """K(w_i) for w_i ~ φ i.i.d., i = 1..num_samples: float64 of shape ``(num_samples,)``.

    Draws in chunks of ``chunk_size`` so that memory stays O(chunk_size · d).
    """
    num_samples = _check_positive_int("num_samples", num_samples)
    chunk_size = _check_positive_int("chunk_size", chunk_size)
    out = torch.empty(num_samples, dtype=torch.float64)
    for start in range(0, num_samples, chunk_size):
        n = min(chunk_size, num_samples - start)
        w = prior_sampler(n, generator)
        if not isinstance(w, Tensor) or w.ndim != 2 or w.shape[0] != n:
            raise ValueError(f"prior_sampler(n, generator) must return shape (n, d) = ({n}, d), got {getattr(w, 'shape', w)!r}.")
        k = K(w.double())
        if not isinstance(k, Tensor) or k.shape != (n,):
            raise ValueError(f"K must map parameters of shape (n, d) to values of shape (n,) = ({n},), got {getattr(k, 'shape', k)!r}.")
        out[start : start + n] = k
    if torch.isnan(out).any():
        raise ValueError("K returned NaN for some prior draws; check the potential on the prior's support.")
    return out


@dataclass(frozen=True)
class VolumeCurve:
    """V̂(ε_i) = #{K < ε_i}/N with binomial standard errors √(V̂(1−V̂)/N); tensors of shape ``(E,)``."""

    eps: Tensor
    volume: Tensor
    std_error: Tensor
    counts: Tensor
    num_samples: int


def _as_1d(name: str, x: Tensor | Sequence[float]) -> Tensor:
    t = float64_tensor(name, x)
    if t.ndim != 1 or t.numel() < 1:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {tuple(t.shape)}.")
    return t


def volume_curve(K_values: Tensor, eps: Tensor | Sequence[float]) -> VolumeCurve:
    """V̂(ε) = (1/N) #{i : K(w_i) < ε} for each ε, with its binomial standard error."""
    k = _as_1d("K_values", K_values)
    e = _as_1d("eps", eps)
    if (e <= 0).any():
        raise ValueError(f"every ε must be positive (V(ε) is for small ε > 0), got min ε = {e.min().item():g}.")
    if (k < 0).any():
        raise ValueError("K_values contains negative values, but a potential K(w) is ≥ 0.")
    n = k.numel()
    counts = torch.searchsorted(torch.sort(k).values, e, right=False)  # #{K < ε}
    v = counts.double() / n
    return VolumeCurve(eps=e, volume=v, std_error=(v * (1 - v) / n).sqrt(), counts=counts, num_samples=n)


def log_spaced_eps(
    K_values: Tensor, *, num: int = 16, min_count: int = 200, max_fraction: float = 0.05
) -> Tensor:
    """``num`` log-spaced ε from the min_count-th smallest K up to the max_fraction quantile of K."""
    k = torch.sort(_as_1d("K_values", K_values)).values
    num = _check_positive_int("num", num)
    min_count = _check_positive_int("min_count", min_count)
    max_fraction = positive_float("max_fraction", max_fraction)
    n = k.numel()
    hi_index = int(max_fraction * n)
    if not 0 < max_fraction < 1 or hi_index <= min_count:
        raise ValueError(
            f"need max_fraction·N > min_count, got max_fraction = {max_fraction}, N = {n}, "
            f"min_count = {min_count}: draw more samples."
        )
    lo, hi = k[min_count].item(), k[hi_index].item()
    if not lo > 0:
        raise ValueError(f"more than {min_count} draws have K = 0 exactly; K must be positive almost everywhere.")
    return torch.logspace(math.log10(lo), math.log10(hi), num, dtype=torch.float64)


# --- Fitting λ ---------------------------------------------------------------------------

@dataclass(frozen=True)
class VolumeFit:
    """Fit of log V(ε) = log c + λ log ε + (m−1) log(−log ε); ``lam_se`` is the Monte Carlo standard error."""

    lam: float
    lam_se: float
    m_used: float
    m_se: float | None
    log_c: float
    eps: Tensor
    volume: Tensor
    num_samples: int

    def interval(self, z: float = 1.96) -> tuple[float, float]:
        """(λ̂ − z·se, λ̂ + z·se): a normal confidence interval for λ (Monte Carlo error only)."""
        return self.lam - z * self.lam_se, self.lam + z * self.lam_se


def fit_rlct_from_volume(
    eps: Tensor | Sequence[float],
    V: Tensor | Sequence[float],
    num_samples: int,
    *,
    m: int = 1,
    fit_m: bool = False,
    min_count: int = 20,
) -> VolumeFit:
    """λ̂ from weighted least squares of log V̂(ε) on log ε (and log(−log ε)), 0 < ε < 1.

    - ``m`` known (default 1): regress log V̂ − (m−1) log(−log ε) on [1, log ε]. Fitting with
      m = 1 when the truth has m > 1 biases λ̂ low: (m−1) log(−log ε) grows as ε → 0, and
      over ε ∈ [10⁻⁶, 10⁻²] it looks like an extra slope of about −(m−1)·0.1.
    - ``fit_m=True``: regress on [1, log ε, log(−log ε)] and report m̂ = 1 + coefficient.
      Over a few decades log(−log ε) is almost linear in log ε, so λ̂ and m̂ are strongly
      correlated and their standard errors are large; prefer a known m when theory gives it.

    Weights are 1/Var(log V̂_i) ≈ N V_i/(1 − V_i). ``lam_se`` is the exact delta-method
    (sandwich) standard error for the *correlated* counts #{K < ε_i} of one sample of size
    N: Cov(log V̂_i, log V̂_j) = (V_{min(i,j)} − V_i V_j)/(N V_i V_j). It measures Monte Carlo
    noise only, not the deterministic bias of using finite ε (the asymptotic form has
    corrections, e.g. relative O(1/log ε) when m > 1).
    """
    e = _as_1d("eps", eps)
    v = _as_1d("V", V)
    num_samples = _check_positive_int("num_samples", num_samples)
    m = _check_positive_int("m", m)
    min_count = _check_positive_int("min_count", min_count)
    if e.shape != v.shape:
        raise ValueError(f"eps and V must have the same shape, got {tuple(e.shape)} and {tuple(v.shape)}.")
    if ((e <= 0) | (e >= 1)).any():
        raise ValueError("every ε must satisfy 0 < ε < 1 (the fit is for small ε; rescale K if needed).")
    if ((v < 0) | (v > 1)).any():
        raise ValueError("V must be probabilities in [0, 1].")
    need = 3 if fit_m else 2
    if torch.unique(e).numel() < need:
        raise ValueError(f"need at least {need} distinct ε to fit {need} coefficients, got {torch.unique(e).numel()}.")
    order = torch.argsort(e)
    e, v = e[order], v[order]
    if (torch.diff(v) < 0).any():
        raise ValueError("V(ε) must be non-decreasing in ε (it is a distribution function); check the inputs.")
    smallest_count = round(v[0].item() * num_samples)
    if smallest_count < min_count:
        raise ValueError(
            f"only {smallest_count} of {num_samples} samples have K < ε_min = {e[0].item():.3g} "
            f"(need at least {min_count}): draw more samples or raise the smallest ε."
        )
    if (v >= 1).any():
        raise ValueError("V(ε) = 1 for some ε: every sample lies below it, so that ε is not small; lower it.")

    log_e, log_l = e.log(), (-e.log()).log()
    y = v.log() - (0.0 if fit_m else (m - 1) * log_l)
    cols = [torch.ones_like(e), log_e] + ([log_l] if fit_m else [])
    X = torch.stack(cols, dim=1)
    w = num_samples * v / (1 - v)
    xtw = X.T * w
    A = torch.linalg.solve(xtw @ X, xtw)  # β̂ = A y
    beta = A @ y
    vmin = torch.minimum(v[:, None], v[None, :])
    cov_y = (vmin - v[:, None] * v[None, :]) / (num_samples * v[:, None] * v[None, :])
    cov_beta = A @ cov_y @ A.T
    se = cov_beta.diagonal().clamp_min(0).sqrt()
    return VolumeFit(
        lam=beta[1].item(),
        lam_se=se[1].item(),
        m_used=1 + beta[2].item() if fit_m else float(m),
        m_se=se[2].item() if fit_m else None,
        log_c=beta[0].item(),
        eps=e,
        volume=v,
        num_samples=num_samples,
    )
