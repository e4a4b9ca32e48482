"""Watanabe's free-energy asymptotics, WBIC, WAIC and the Bayes generalisation error, by simulation.

The free energy formula (grey book ch. 6; green book ch. 5–6):

    F_n = nL_n(w0) + λ log n − (m−1) log log n + O_p(1),

and the estimators built around it: WBIC = E^β[nL_n(w)] at β = 1/log n (Watanabe 2013, JMLR 14)
and WAIC = T_n + V_n/n (Watanabe 2010, JMLR 11). Everything here works on models of the form
y = g(w)·ψ(x) + N(0, σ²) (``models.LinearFeatureRegression``), whose loss depends on the data only
through sufficient statistics, so that a free energy at n = 10⁶ costs no more than at n = 10.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from slt_course_utils import models, posterior
from slt_course_utils._validate import (
    finite_tensor,
    float64_tensor,
    int_in_range,
    int_sequence,
    positive_float,
    positive_int,
    real_scalar,
)

LossFn = Callable[[Tensor], Tensor]
FreeEnergyFn = Callable[[models.RegressionStatistics], float]


def _check_ns(ns: Sequence[int]) -> list[int]:
    ns = int_sequence("ns (sample sizes)", ns, low=2, min_len=3)
    if sorted(set(ns)) != ns:
        raise ValueError(f"ns must be at least 3 increasing sample sizes ≥ 2, got {ns!r}.")
    return ns


def _check_seeds(seeds: Sequence[int]) -> list[int]:
    seeds = int_sequence("seeds", seeds, low=0, min_len=0)
    if len(seeds) < 2:
        raise ValueError(f"give at least 2 seeds (standard errors are computed across seeds), got {seeds!r}.")
    return seeds


#: y = w·x + N(0, 1): the simplest regular regression (d = 1, λ = ½), with sufficient statistics.
SLOPE = models.LinearFeatureRegression(
    "slope y = w·x", lambda w, x: w[..., 0:1] * x, d=1, coef_fn=lambda w: w, features_fn=lambda x: x[:, None]
)


# --- F_n by quadrature --------------------------------------------------------------------

def quadrature_free_energy(
    model: models.LinearFeatureRegression,
    log_prior_fn: Callable[[Tensor], Tensor],
    bounds: Sequence[tuple[float, float]],
    *,
    beta: float = 1.0,
    tol: float = 1e-5,
    points: int | None = 65,
) -> FreeEnergyFn:
    """stats ↦ F_n(β) = −log ∫ φ(w) exp(−nβL_n(w)) dw by ``posterior.free_energy_adaptive`` (1-D or 2-D w)."""
    if len(bounds) != model.d:
        raise ValueError(f"{model.name} has d = {model.d} parameters but {len(bounds)} bounds were given.")

    def free(stats: models.RegressionStatistics) -> float:
        res = posterior.free_energy_adaptive(
            lambda w: model.loss_from_statistics(w, stats), log_prior_fn, bounds, stats.n, beta, tol=tol, points=points
        )
        return res.free_energy

    return free


def _scalar_loss(t: Tensor, stats: models.RegressionStatistics, sigma: float) -> Tensor:
    """L_n(t) for y = t·x + N(0, σ²) from its statistics (one feature ψ(x) = x)."""
    g, c = stats.gram.reshape(()).item(), stats.cross.reshape(()).item()
    return 0.5 * (models.LOG_2PI + 2 * math.log(sigma)) + (stats.yy - 2 * t * c + t * t * g) / (2 * sigma**2 * stats.n)


def monomial_free_energy(k: int, p: int = 1, *, sigma: float = 1.0, beta: float = 1.0, tol: float = 1e-6) -> FreeEnergyFn:
    """stats ↦ F_n for y = (a_1⋯a_k)^p·x + N(0, σ²) with the uniform prior on [−1, 1]^k, as a 1-D integral.

    The loss depends on w only through t = (a_1⋯a_k)^p, and s = −log|t| = p·Σ_j(−log|a_j|) ~ p·Gamma(k, 1),
    so Z_n = E_s[½ Σ_± exp(−nβL_n(±e^{−s}))] (t ≥ 0 only when p is even): a smooth integral over
    s ∈ [0, 200] whatever n is. The density of |t| near 0, ∝ |t|^{1/p − 1} (log 1/|t|)^{k−1}, gives
    λ = 1/(2p), m = k for k·p > 1 (PRODUCT: k = 2 → λ = ½, m = 2; SQUARE: k = 1, p = 2 → λ = ¼;
    TRIPLE_PRODUCT: k = 3 → λ = ½, m = 3).
    """
    k, p = positive_int("k", k), positive_int("p", p)
    sigma, beta, tol = positive_float("sigma", sigma), positive_float("beta", beta), positive_float("tol", tol)
    log_norm = math.lgamma(k) + k * math.log(p)
    signs = (1.0,) if p % 2 == 0 else (1.0, -1.0)

    def log_density_s(s: Tensor) -> Tensor:
        s = s[..., 0]
        return (k - 1) * torch.log(s.clamp_min(1e-300)) - s / p - log_norm

    def free(stats: models.RegressionStatistics) -> float:
        if stats.gram.numel() != 1:
            raise ValueError("monomial_free_energy needs the one-feature models y = t·x + noise (ψ(x) = x).")
        logs = []
        for sign in signs:
            res = posterior.free_energy_adaptive(
                lambda s, sign=sign: _scalar_loss(sign * torch.exp(-s[..., 0]), stats, sigma),
                log_density_s, [(0.0, 200.0)], stats.n, beta, tol=tol,
            )
            logs.append(-res.free_energy)
        return -(torch.logsumexp(torch.tensor(logs, dtype=torch.float64), 0).item() - math.log(len(signs)))

    return free


@dataclass(frozen=True)
class FreeEnergyCurves:
    """F_n − nL_n(w0) for each seed and n: ``excess`` has shape ``(len(seeds), len(ns))``."""

    ns: Tensor
    excess: Tensor
    seeds: tuple[int, ...]

    def mean(self) -> Tensor:
        """Mean over seeds, shape ``(len(ns),)``."""
        return self.excess.mean(0)

    def stderr(self) -> Tensor:
        """Standard error of the mean over seeds, shape ``(len(ns),)``."""
        return self.excess.std(0) / math.sqrt(self.excess.shape[0])


def free_energy_curves(
    model: models.LinearFeatureRegression,
    w0: Sequence[float] | Tensor,
    ns: Sequence[int],
    *,
    seeds: Sequence[int],
    free_energy_fn: FreeEnergyFn,
) -> FreeEnergyCurves:
    """F_n − nL_n(w0) on a fresh data set per seed (nested in n: the first n points of one sample of size max n)."""
    ns, seeds = _check_ns(ns), _check_seeds(seeds)
    w0 = torch.as_tensor(w0, dtype=torch.float64)
    out = torch.empty(len(seeds), len(ns), dtype=torch.float64)
    for i, seed in enumerate(seeds):
        x, y = model.sample(w0, ns[-1], generator=torch.Generator().manual_seed(seed))
        for j, n in enumerate(ns):
            stats = model.statistics(x[:n], y[:n])
            out[i, j] = free_energy_fn(stats) - n * model.loss_from_statistics(w0, stats).item()
    return FreeEnergyCurves(ns=torch.tensor(ns, dtype=torch.float64), excess=out, seeds=tuple(seeds))


# --- fitting λ (and m) -----------------------------------------------------------------------

@dataclass(frozen=True)
class LambdaFit:
    """λ̂ (and m̂ when fitted) as the mean over seeds of per-seed OLS fits, with standard errors across seeds."""

    lam: float
    lam_stderr: float
    multiplicity: float
    multiplicity_stderr: float
    per_seed_lam: Tensor

    def __str__(self) -> str:
        m_txt = (
            f"m = {self.multiplicity:.2f} ± {self.multiplicity_stderr:.2f}"
            if self.multiplicity_stderr > 0
            else f"m = {self.multiplicity:g} (given)"
        )
        return f"λ = {self.lam:.3f} ± {self.lam_stderr:.3f}, {m_txt}"


def fit_learning_coefficient(
    ns: Sequence[float] | Tensor, excess: Tensor, *, multiplicity: int | None = 1
) -> LambdaFit:
    """Per seed, OLS of F_n − nL_n(w0) ≈ λ log n − (m−1) log log n + c; mean ± s.e. over seeds.

    ``excess`` has shape ``(seeds, len(ns))`` (a 1-D curve counts as one seed, with the OLS
    standard error instead). With ``multiplicity=m`` the log log n term is removed first and only λ
    and c are fitted; with ``multiplicity=None`` λ and m are fitted jointly (ill-conditioned over a
    few decades of n: expect a large standard error on m).
    """
    logn = torch.log(float64_tensor("ns", ns))
    y = float64_tensor("excess", excess)
    if y.ndim == 1:
        y = y[None]
    if logn.ndim != 1 or y.ndim != 2 or y.shape[1] != logn.numel():
        raise ValueError(f"excess must have shape (seeds, len(ns)) = (·, {logn.numel()}), got {tuple(y.shape)}.")
    if logn.numel() < (4 if multiplicity is None else 3):
        raise ValueError("need at least 3 values of n (4 to fit m as well).")
    if (logn <= 0).any():
        raise ValueError("every n must exceed 1 (log log n is needed).")
    if multiplicity is not None:
        multiplicity = positive_int("multiplicity (or None, to fit it)", multiplicity)
        design = torch.stack([logn, torch.ones_like(logn)], -1)
        target = y + (multiplicity - 1) * torch.log(logn)
    else:
        design = torch.stack([logn, -torch.log(logn), torch.ones_like(logn)], -1)
        target = y
    coef = torch.linalg.lstsq(design.expand(y.shape[0], -1, -1), target[..., None]).solution[..., 0]  # (S, p)
    lam = coef[:, 0]
    m = coef[:, 1] + 1 if multiplicity is None else torch.full_like(lam, float(multiplicity))
    if y.shape[0] >= 2:
        lam_se = (lam.std() / math.sqrt(y.shape[0])).item()
        m_se = (m.std() / math.sqrt(y.shape[0])).item() if multiplicity is None else 0.0
    else:  # one curve: the OLS standard error
        resid = target[0] - design @ coef[0]
        dof = logn.numel() - design.shape[1]
        cov = (resid @ resid / max(dof, 1)) * torch.linalg.inv(design.T @ design)
        lam_se = cov[0, 0].sqrt().item()
        m_se = cov[1, 1].sqrt().item() if multiplicity is None else 0.0
    return LambdaFit(lam=lam.mean().item(), lam_stderr=lam_se, multiplicity=m.mean().item(),
                     multiplicity_stderr=m_se, per_seed_lam=lam)


# --- WBIC ----------------------------------------------------------------------------------

def wbic_beta(n: float) -> float:
    """β* = 1/log n, the inverse temperature of WBIC (n > 1)."""
    n = real_scalar("n", n)
    if not (math.isfinite(n) and n > 1):
        raise ValueError(f"WBIC needs n > 1 (β = 1/log n), got {n!r}.")
    return 1.0 / math.log(n)


def _mesh(box: Sequence[tuple[float, float]], points: int) -> tuple[Tensor, Tensor]:
    """Points of the uniform grid over ``box`` (shape (..., d)) and their trapezoid log weights."""
    axes = [torch.linspace(lo, hi, points, dtype=torch.float64) for lo, hi in box]
    w = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1)
    log_wt = torch.zeros(w.shape[:-1], dtype=torch.float64)
    for k in range(len(box)):
        log_wt.narrow(k, 0, 1).add_(-math.log(2.0))
        log_wt.narrow(k, points - 1, 1).add_(-math.log(2.0))
    return w, log_wt


def tempered_grid(
    loss_fn: LossFn, log_prior_fn: Callable[[Tensor], Tensor], bounds: Sequence[tuple[float, float]], n: float,
    beta: float = 1.0, *, points: int = 257,
) -> tuple[Tensor, Tensor, Tensor]:
    """(w, L_n(w), normalised weights) of the tempered posterior on a grid over the box where it lives.

    The box is found by ``posterior.free_energy_adaptive``; then a uniform grid with ``points`` per
    axis (trapezoid weights) carries weights ∝ φ(w) exp(−nβL_n(w)) summing to 1. Shapes (..., d), (...), (...).
    """
    points = int_in_range("points", points, 2)
    res = posterior.free_energy_adaptive(loss_fn, log_prior_fn, bounds, n, beta, points=65, tol=1e-4)
    w, log_wt = _mesh(res.box, points)
    loss = loss_fn(w)
    log_u = log_prior_fn(w) - n * beta * loss + log_wt
    return w, loss, torch.softmax(log_u.reshape(-1), 0).reshape(log_u.shape)


def wbic_grid(
    loss_fn: LossFn, log_prior_fn: Callable[[Tensor], Tensor], bounds: Sequence[tuple[float, float]], n: float,
    *, points: int = 257,
) -> float:
    """WBIC = E^β[nL_n(w)] at β = 1/log n, the expectation computed on a grid (1-D or 2-D w)."""
    _, loss, weights = tempered_grid(loss_fn, log_prior_fn, bounds, n, wbic_beta(n), points=points)
    return (n * (weights * loss).sum()).item()


def wbic_samples(loss_fn: LossFn, samples: Tensor, n: float) -> float:
    """WBIC = (1/S) Σ_s nL_n(w_s) for draws w_s of shape (..., d) from the posterior at β = 1/log n."""
    wbic_beta(n)
    loss = loss_fn(torch.as_tensor(samples, dtype=torch.float64))
    if not torch.isfinite(loss).all():
        raise ValueError("L_n is not finite at some samples; check the sampler and the model.")
    return (n * loss.mean()).item()


def tempered_log_density(
    loss_fn: LossFn, log_prior_fn: Callable[[Tensor], Tensor], n: float, beta: float = 1.0
) -> Callable[[Tensor], Tensor]:
    """w ↦ log φ(w) − nβL_n(w), for samplers whose states have shape (chains, d)."""
    n, beta = positive_float("n", n), positive_float("beta", beta)
    return lambda w: log_prior_fn(w) - n * beta * loss_fn(w)


# --- WAIC and the Bayes generalisation error ------------------------------------------------

@dataclass(frozen=True)
class WAICResult:
    """WAIC = T_n + V_n/n with T_n the training loss of the predictive and V_n the functional variance."""

    waic: float
    training_loss: float
    functional_variance: float
    stderr: float


def waic(log_lik: Tensor, weights: Tensor | None = None) -> WAICResult:
    """WAIC from pointwise log-likelihoods log p(y_i|x_i, w_s), shape (S, n), under posterior draws (or weights).

    T_n = −(1/n) Σ_i log E_w[p(y_i|x_i,w)], V_n = Σ_i Var_w[log p(y_i|x_i,w)] (Watanabe 2010, JMLR 11);
    ``stderr`` is the standard error over data points of the pointwise terms, sd/√n.
    """
    ll = torch.as_tensor(log_lik, dtype=torch.float64)
    if ll.ndim != 2 or ll.shape[0] < 2 or ll.shape[1] < 2:
        raise ValueError(f"log_lik must have shape (draws ≥ 2, n ≥ 2), got {tuple(ll.shape)}.")
    if not torch.isfinite(ll).all():
        raise ValueError("log_lik contains NaN or infinite values.")
    S, n = ll.shape
    log_w = _log_weights(weights, S)
    log_pred = torch.logsumexp(ll + log_w[:, None], 0)  # (n,)
    wt = log_w.exp()[:, None]
    mean = (wt * ll).sum(0)
    var = (wt * (ll - mean) ** 2).sum(0)
    pointwise = -log_pred + var
    return WAICResult(
        waic=pointwise.mean().item(), training_loss=(-log_pred.mean()).item(),
        functional_variance=var.sum().item(), stderr=(pointwise.std() / math.sqrt(n)).item(),
    )


def grid_posterior_draws(
    loss_fn: LossFn, log_prior_fn: Callable[[Tensor], Tensor], bounds: Sequence[tuple[float, float]], n: float,
    num_draws: int, *, beta: float = 1.0, points: int = 257, generator: torch.Generator | None = None,
) -> Tensor:
    """``num_draws`` exact-in-the-limit draws from the grid posterior (multinomial on cells, uniform jitter within a cell), shape (num_draws, d)."""
    num_draws = positive_int("num_draws", num_draws)
    w, _, weights = tempered_grid(loss_fn, log_prior_fn, bounds, n, beta, points=points)
    flat = w.reshape(-1, w.shape[-1])
    idx = torch.multinomial(weights.reshape(-1), num_draws, replacement=True, generator=generator)
    steps = torch.tensor([(flat[:, k].max() - flat[:, k].min()).item() / (points - 1) for k in range(w.shape[-1])],
                         dtype=torch.float64)
    jitter = (torch.rand(num_draws, w.shape[-1], generator=generator, dtype=torch.float64) - 0.5) * steps
    return flat[idx] + jitter


def _log_weights(weights: Tensor | None, S: int) -> Tensor:
    if weights is None:
        return torch.full((S,), -math.log(S), dtype=torch.float64)
    weights = finite_tensor("weights", torch.as_tensor(weights, dtype=torch.float64))
    if weights.shape != (S,) or (weights < 0).any() or not weights.sum() > 0:
        raise ValueError(f"weights must be non-negative of shape ({S},) with a positive sum.")
    return torch.log(weights / weights.sum())


def bayes_generalisation_loss(
    model: models.GaussianRegression, w0: Sequence[float] | Tensor, draws: Tensor, *,
    weights: Tensor | None = None, nodes: int = 32,
) -> float:
    """G'_n = −E_{x,y∼q}[log Σ_s ω_s p(y|x, w_s)] (ω_s = 1/S for draws), by Gauss–Hermite in x ~ N(0,1) and the noise (``nodes`` each)."""
    w0 = torch.as_tensor(w0, dtype=torch.float64)
    draws = model._check_w(torch.as_tensor(draws, dtype=torch.float64))
    if draws.ndim != 2:
        raise ValueError(f"draws must have shape (S, d), got {tuple(draws.shape)}.")
    log_w = _log_weights(weights, draws.shape[0])
    xs, wx = models.gauss_hermite_normal(nodes)
    es, we = models.gauss_hermite_normal(nodes)
    f0 = model.mean_fn(w0, xs)  # (X,)
    fs = model.mean_fn(draws, xs)  # (S, X)
    y = f0[:, None] + model.sigma * es[None, :]  # (X, E)
    r = y[None] - fs[:, :, None]  # (S, X, E)
    log_p = -0.5 * (models.LOG_2PI + 2 * math.log(model.sigma)) - r * r / (2 * model.sigma**2)
    log_pred = torch.logsumexp(log_p + log_w[:, None, None], 0)  # (X, E)
    return -(wx[:, None] * we[None, :] * log_pred).sum().item()


def bayes_generalisation_error(
    model: models.GaussianRegression, w0: Sequence[float] | Tensor, draws: Tensor, *,
    weights: Tensor | None = None, nodes: int = 32,
) -> float:
    """G_n = KL(q ‖ predictive) = G'_n − S, with S = ½ log(2πeσ²) the entropy of the noise."""
    entropy = 0.5 * (models.LOG_2PI + 2 * math.log(model.sigma) + 1)
    return bayes_generalisation_loss(model, w0, draws, weights=weights, nodes=nodes) - entropy


@dataclass(frozen=True)
class GeneralisationSimulation:
    """Per data set (shape (R,)): G_n, the generalisation loss G'_n, WAIC, its parts, and the empirical entropy S_n."""

    n: int
    generalisation_error: Tensor
    generalisation_loss: Tensor
    waic: Tensor
    training_loss: Tensor
    functional_variance: Tensor
    empirical_entropy: Tensor

    def n_mean_error(self) -> tuple[float, float]:
        """(n·E[G_n], its standard error over data sets)."""
        g = self.n * self.generalisation_error
        return g.mean().item(), (g.std() / math.sqrt(g.numel())).item()

    def waic_minus_loss(self) -> tuple[float, float]:
        """(mean of WAIC − G'_n over data sets, its standard error): E[WAIC] = E[G'_n] + o(1/n)."""
        d = self.waic - self.generalisation_loss
        return d.mean().item(), (d.std() / math.sqrt(d.numel())).item()


def simulate_generalisation(
    model: models.LinearFeatureRegression,
    w0: Sequence[float] | Tensor,
    n: int,
    *,
    seeds: Sequence[int],
    log_prior_fn: Callable[[Tensor], Tensor],
    bounds: Sequence[tuple[float, float]],
    points: int | None = None,
) -> GeneralisationSimulation:
    """For each seed: a data set of size n, the grid posterior (points per axis: 129 in 1-D, 65 in 2-D), then G_n
    (quadrature over x and y of KL(q ‖ predictive)) and WAIC with the grid weights."""
    seeds = _check_seeds(seeds)
    n = int_in_range("n", n, 2)
    w0 = torch.as_tensor(w0, dtype=torch.float64)
    entropy = 0.5 * (models.LOG_2PI + 2 * math.log(model.sigma) + 1)
    cols: dict[str, list[float]] = {k: [] for k in ("g", "gl", "waic", "t", "v", "s")}
    for seed in seeds:
        gen = torch.Generator().manual_seed(seed)
        x, y = model.sample(w0, n, generator=gen)
        stats = model.statistics(x, y)
        w, _, weights = tempered_grid(lambda v, s=stats: model.loss_from_statistics(v, s), log_prior_fn, bounds, n,
                                      points=points or (129 if model.d == 1 else 65))
        w, weights = w.reshape(-1, model.d), weights.reshape(-1)
        keep = weights > 1e-300  # empty cells contribute nothing
        w, weights = w[keep], weights[keep]
        gl = bayes_generalisation_loss(model, w0, w, weights=weights)
        res = waic(-model.nll(w, x, y), weights)
        cols["g"].append(gl - entropy)
        cols["gl"].append(gl)
        cols["waic"].append(res.waic)
        cols["t"].append(res.training_loss)
        cols["v"].append(res.functional_variance)
        cols["s"].append(model.nll(w0, x, y).mean().item())
    t = lambda k: torch.tensor(cols[k], dtype=torch.float64)
    return GeneralisationSimulation(n=n, generalisation_error=t("g"), generalisation_loss=t("gl"), waic=t("waic"),
                                    training_loss=t("t"), functional_variance=t("v"), empirical_entropy=t("s"))


def singular_fluctuation_limit(lam: float, *, one_sided: bool = True, nodes: int = 120, points: int = 4001) -> float:
    """Singular fluctuation ν of y = t·x + N(0, 1) at truth t = 0 when the prior density of t near 0 is ∝ |t|^{2λ−1}.

    With u = √n·t and Z ~ N(0, 1) the score, the posterior tends to ∝ |u|^{2λ−1} e^{−u²/2 + Zu} (on u > 0 when
    ``one_sided``, as for t = a^{2p}, λ = 1/(2p)), and E[V_n] → 2ν with ν = ½ E_Z[Var(u)]. Regular (λ = ½,
    two-sided): ν = ½ exactly. Computed by Gauss–Hermite over Z and a trapezoid rule in v = |u|^{2λ}, where
    the density is bounded.
    """
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0 < lam <= 2:
        raise ValueError(f"lam must be a number in (0, 2], got {lam!r}.")
    z, omega = models.gauss_hermite_normal(nodes)
    v_max = (float(z.abs().max()) + 12.0) ** (2 * lam)
    v = torch.linspace(0.0 if one_sided else -v_max, v_max, points, dtype=torch.float64)
    u = v.sign() * v.abs() ** (1 / (2 * lam))  # |u|^{2λ−1} du ∝ dv
    log_w = -0.5 * u**2 + z[:, None] * u  # (nodes, points)
    w = torch.softmax(log_w, dim=1)  # uniform grid in v: trapezoid weights up to the end points, where w ≈ 0
    mean = (w * u).sum(1)
    var = (w * (u - mean[:, None]) ** 2).sum(1)
    return 0.5 * float((omega * var).sum())
