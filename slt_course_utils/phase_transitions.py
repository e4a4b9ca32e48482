"""Bayesian phase transitions on a two-basin potential: local free energies, the critical n, and SGD for contrast.

Internal model selection (Watanabe, green book ch. 6; Chen et al. 2310.06301): if the
parameter space splits into regions ("phases") W_1, W_2 with local free energies
F_i(n) = −log ∫_{W_i} φ(w) e^{−nL(w)} dw ≈ nL_i + λ_i log n − (m_i − 1) log log n + c_i, the
posterior mass of W_2 is 1/(1 + e^{F_2 − F_1}). A simple phase (higher loss L_1, lower λ_1)
wins at small n; an accurate one (L_2 < L_1, λ_2 > λ_1) wins once n(L_1 − L_2) > (λ_2 − λ_1) log n.

The potential here plays the role of the population loss L(w) (the "noise-free" posterior
φ(w) e^{−nL(w)}), so that the transition is a deterministic function of n.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import torch
from torch import Tensor

from slt_course_utils import posterior, theory
from slt_course_utils._validate import (
    finite_float,
    int_in_range,
    nonnegative_float,
    positive_float,
    positive_int,
)

PHASES = ("simple", "accurate")


@dataclass(frozen=True)
class TwoPhasePotential:
    """L(a, b) = h(a) + (1+a)²b²/4 + b⁴ with h(a) = ΔL + (a+1)⁴(αa² + βa + γ); prior N(0, s²) per coordinate.

    β = ΔL/8 − 2α and γ = α − 3ΔL/16 make h(1) = h'(1) = 0, so:

    * the **simple** phase, a < ridge, has its minimum at (−1, 0) with L = ΔL and
      K ≈ r(a+1)⁴ + (a+1)²b²/4 + b⁴, a positive definite quartic form: λ = 2/4 = ½, m = 1
      (homogeneous of degree 4 in d = 2 variables);
    * the **accurate** phase, a > ridge, has its minimum at (1, 0) with L = 0 and a positive
      definite Hessian: regular, λ = d/2 = 1, m = 1.
    """

    loss_gap: float = 0.005
    alpha: float = 0.1
    prior_std: float = 1.0

    def __post_init__(self) -> None:
        for name in ("loss_gap", "alpha", "prior_std"):
            finite_float(name, getattr(self, name))
        if not (math.isfinite(self.loss_gap) and 0 < self.loss_gap < 0.1):
            raise ValueError(f"loss_gap (ΔL = L_simple − L_accurate) must lie in (0, 0.1), got {self.loss_gap!r}.")
        if not (math.isfinite(self.alpha) and self.alpha > 5 * self.loss_gap / 64):
            raise ValueError(f"alpha must exceed 5ΔL/64 so that the simple minimum is quartic and not flat, got {self.alpha!r}.")
        if not (math.isfinite(self.prior_std) and self.prior_std > 0):
            raise ValueError(f"prior_std must be positive, got {self.prior_std!r}.")

    @property
    def d(self) -> int:
        """Number of parameters (a, b)."""
        return 2

    def h(self, a: Tensor) -> Tensor:
        """h(a) = ΔL + (a+1)⁴(αa² + βa + γ), the loss along b = 0."""
        dl, al = self.loss_gap, self.alpha
        beta, gamma = dl / 8 - 2 * al, al - 3 * dl / 16
        return dl + (a + 1) ** 4 * (al * a * a + beta * a + gamma)

    def loss(self, w: Tensor) -> Tensor:
        """L(w) for w of shape (..., 2), shape (...)."""
        if w.shape[-1:] != (2,):
            raise ValueError(f"the two-phase potential has parameters (a, b): last dimension 2, got shape {tuple(w.shape)}.")
        a, b = w[..., 0], w[..., 1]
        return self.h(a) + (1 + a) ** 2 * b * b / 4 + b**4

    def log_prior(self, w: Tensor) -> Tensor:
        """log φ(w), φ = N(0, s²) on each coordinate, shape (...)."""
        return posterior.log_normal_prior(w, 0.0, self.prior_std).sum(-1)

    @property
    def ridge(self) -> float:
        """a at the top of the barrier of h between −1 and 1: the boundary between the phases."""
        a = torch.linspace(-1.0, 1.0, 200_001, dtype=torch.float64)
        return a[self.h(a).argmax()].item()

    @property
    def minima(self) -> dict[str, tuple[float, float]]:
        """The minimum of each phase."""
        return {"simple": (-1.0, 0.0), "accurate": (1.0, 0.0)}

    @property
    def phase_losses(self) -> dict[str, float]:
        """L at the minimum of each phase: ΔL and 0."""
        return {"simple": self.loss_gap, "accurate": 0.0}

    @property
    def learning_coefficients(self) -> dict[str, tuple[Fraction, int]]:
        """(λ, m) of each phase: a positive definite quartic in 2 variables (½, 1), a regular point (1, 1)."""
        return {"simple": theory.rlct_homogeneous_radial(2, 2), "accurate": theory.rlct_regular(2)}

    def phase_bounds(self, phase: str, *, half_width: float = 6.0) -> list[tuple[float, float]]:
        """The box of a phase: a on its side of the ridge, |a|, |b| ≤ half_width."""
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}.")
        r = self.ridge
        a_range = (-half_width, r) if phase == "simple" else (r, half_width)
        return [a_range, (-half_width, half_width)]

    def local_free_energy(self, n: float, phase: str, *, beta: float = 1.0, tol: float = 1e-6) -> float:
        """F_n(W_i) = −log ∫_{W_i} φ(w) e^{−nβL(w)} dw by adaptive quadrature restricted to the phase's box."""
        res = posterior.free_energy_adaptive(self.loss, self.log_prior, self.phase_bounds(phase), n, beta, tol=tol, points=65)
        return res.free_energy

    def posterior_mass(self, n: float, *, beta: float = 1.0) -> float:
        """Posterior probability of the accurate phase, 1/(1 + exp(F_accurate − F_simple))."""
        diff = self.local_free_energy(n, "accurate", beta=beta) - self.local_free_energy(n, "simple", beta=beta)
        return 1.0 / (1.0 + math.exp(min(diff, 700.0)))

    def posterior_grid(self, n: float, *, beta: float = 1.0, size: int = 241, limit: float = 2.0) -> posterior.GridPosterior:
        """The posterior on a size × size grid over [−limit, limit]² (for pictures; free energies use ``local_free_energy``)."""
        size, limit = int_in_range("size", size, 2), positive_float("limit", limit)
        axis = torch.linspace(-limit, limit, size, dtype=torch.float64)
        w = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1)
        return posterior.grid_posterior((axis, axis), self.log_prior(w), self.loss(w), n, beta)


#: The course's two-phase potential: ΔL = 0.005, λ_simple = ½, λ_accurate = 1.
TWO_PHASE = TwoPhasePotential()


def critical_n(
    loss_gap: float, lambda_gap: float, *, multiplicity_gap: int = 0, constant_gap: float = 0.0
) -> float:
    """The n solving n·ΔL = Δλ·log n − Δm·log log n − Δc (the largest root), i.e. F_simple(n) = F_accurate(n).

    ΔL = L_simple − L_accurate > 0, Δλ = λ_accurate − λ_simple, Δm = m_accurate − m_simple and
    Δc = c_simple − c_accurate (the O(1) terms; 0 for the leading-order prediction). Found by
    bisection in log n. Raises ``ValueError`` when the formula predicts no transition.
    """
    loss_gap = positive_float("loss_gap (the simple phase has the higher loss)", loss_gap)
    lambda_gap, constant_gap = finite_float("lambda_gap", lambda_gap), finite_float("constant_gap", constant_gap)
    multiplicity_gap = int_in_range("multiplicity_gap", multiplicity_gap)

    def g(logn: float) -> float:
        return loss_gap * math.exp(logn) - lambda_gap * logn + multiplicity_gap * math.log(logn) + constant_gap

    grid = [math.log(3.0) + k * 0.01 for k in range(6000)]  # n from 3 to ~ 3·e^60
    values = [g(t) for t in grid]
    k_min = min(range(len(grid)), key=values.__getitem__)
    if values[k_min] >= 0:
        raise ValueError(
            "the asymptotic formula predicts no transition: the accurate phase is preferred (or the simple one "
            "is never worse) at every n ≥ 3; check the signs of the gaps."
        )
    lo, hi = grid[k_min], grid[k_min] + 1.0
    while g(hi) < 0:
        hi += 1.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if g(mid) < 0 else (lo, mid)
    return math.exp(0.5 * (lo + hi))


def observed_critical_n(potential: TwoPhasePotential, *, n_low: float = 100.0, n_high: float = 1e5, rtol: float = 1e-3) -> float:
    """The n at which the local free energies of the two phases cross (posterior mass ½), by regula falsi in log n."""
    n_low, n_high, rtol = positive_float("n_low", n_low), positive_float("n_high", n_high), positive_float("rtol", rtol)
    if not n_high > n_low:
        raise ValueError(f"need n_low < n_high, got [{n_low:g}, {n_high:g}].")
    diff = lambda t: potential.local_free_energy(math.exp(t), "simple") - potential.local_free_energy(math.exp(t), "accurate")
    lo, hi = math.log(n_low), math.log(n_high)
    f_lo, f_hi = diff(lo), diff(hi)
    if f_lo > 0 or f_hi < 0:
        raise ValueError(f"no crossing of the local free energies in [{n_low:g}, {n_high:g}]; widen the bracket.")
    side = 0
    for _ in range(60):  # Illinois variant of regula falsi: superlinear, keeps the bracket
        mid = (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
        f_mid = diff(mid)
        if f_mid < 0:
            lo, f_lo = mid, f_mid
            if side == -1:
                f_hi /= 2
            side = -1
        else:
            hi, f_hi = mid, f_mid
            if side == 1:
                f_lo /= 2
            side = 1
        if hi - lo < rtol or abs(f_mid) < 1e-9:
            break
    return math.exp(mid)


def local_free_energy_constants(potential: TwoPhasePotential, n: float = 1e6) -> dict[str, float]:
    """c_i ≈ F_i(n) − nL_i − λ_i log n + (m_i − 1) log log n, read off at a large n."""
    out = {}
    for phase in PHASES:
        lam, m = potential.learning_coefficients[phase]
        out[phase] = (
            potential.local_free_energy(n, phase) - n * potential.phase_losses[phase] - float(lam) * math.log(n)
            + (m - 1) * math.log(math.log(n))
        )
    return out


@dataclass(frozen=True)
class Trajectory:
    """Parameters (steps + 1, ..., d) and losses (steps + 1, ...) along (stochastic) gradient descent runs."""

    w: Tensor
    loss: Tensor


def gradient_descent(
    loss_fn: Callable[[Tensor], Tensor],
    init: Tensor | list[float],
    *,
    lr: float,
    steps: int,
    noise_std: float = 0.0,
    generator: torch.Generator | None = None,
) -> Trajectory:
    """w_{t+1} = w_t − lr·(∇L(w_t) + noise_std·ξ_t), ξ_t ~ N(0, I): SGD with Gaussian gradient noise.

    ``init`` has shape (d,) or (runs, d) (all runs advance together); ``loss_fn`` maps (..., d) → (...).
    """
    lr, steps = positive_float("lr", lr), positive_int("steps", steps)
    noise_std = nonnegative_float("noise_std", noise_std)
    w = torch.as_tensor(init, dtype=torch.float64).clone()
    ws, losses = [w.clone()], []
    for _ in range(steps):
        x = w.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = loss_fn(x)
            (grad,) = torch.autograd.grad(loss.sum(), x)
        losses.append(loss.detach())
        if noise_std > 0:
            grad = grad + noise_std * torch.randn(w.shape, generator=generator, dtype=torch.float64)
        w = (w - lr * grad).detach()
        if not torch.isfinite(w).all():
            raise ValueError("gradient descent diverged (non-finite parameters): lower lr.")
        ws.append(w.clone())
    losses.append(loss_fn(w).detach())
    return Trajectory(w=torch.stack(ws), loss=torch.stack(losses))


def saddle_plateau_init(
    potential: TwoPhasePotential, *, b0: float = 0.5, offset: float = 1e-6, lr: float = 0.05, steps: int = 1500
) -> tuple[float, float]:
    """(a0, b0) just on the accurate side of the saddle's stable manifold: GD from it descends onto the
    saddle, lingers there (a plateau in the loss) and then escapes into the accurate phase.

    Found by scanning a0 with batched gradient descent (three refinements of 201 points).
    """
    r = potential.ridge
    lo, hi = r - 0.3, r + 0.3
    for _ in range(3):
        a0 = torch.linspace(lo, hi, 201, dtype=torch.float64)
        init = torch.stack([a0, torch.full_like(a0, b0)], -1)
        final = gradient_descent(potential.loss, init, lr=lr, steps=steps).w[-1, :, 0]
        right = final > r
        if right.all() or not right.any():
            raise ValueError("could not bracket the saddle's stable manifold; try another b0.")
        k = int(torch.nonzero(right)[0])
        lo, hi = a0[k - 1].item(), a0[k].item()
    return hi + offset, b0


def exact_local_constants(potential: TwoPhasePotential, *, half_width: float = 6.0, points: int = 1201) -> dict[str, float]:
    """The O(1) constants c_i of F_i(n) = nL_i + λ_i log n + c_i + o(1), exactly (not read off at a finite n).

    accurate (Laplace): c = −log φ(1, 0) − log 2π + ½ log det ∇²L(1, 0), with ∇²L = diag(h''(1), 2);
    simple (quartic, (u, b) = n^{−1/4}(u', b')): c = −log φ(−1, 0) − log ∫∫ exp(−r u⁴ − u²b²/4 − b⁴) du db,
    r = α − β + γ = (h(a) − ΔL)/(a+1)⁴ at a = −1; the integral by the trapezoid rule (spectrally accurate here).
    """
    s2 = potential.prior_std**2
    minus_log_prior = math.log(2 * math.pi * s2) + 1 / (2 * s2)  # −log φ(±1, 0), φ = N(0, s²I)
    dl, al = potential.loss_gap, potential.alpha
    beta, gamma = dl / 8 - 2 * al, al - 3 * dl / 16
    q1, dq1 = al + beta + gamma, 2 * al + beta  # q(a) = αa² + βa + γ at a = 1, and q'(1)
    h2 = 48 * q1 + 64 * dq1 + 32 * al  # h''(1) = [(a+1)⁴q]'' = 12(a+1)²q + 8(a+1)³q' + (a+1)⁴q'' at a = 1
    r = al - beta + gamma
    axis = torch.linspace(-half_width, half_width, points, dtype=torch.float64)
    u, b = torch.meshgrid(axis, axis, indexing="ij")
    integral = torch.exp(-(r * u**4 + 0.25 * u**2 * b**2 + b**4)).sum().item() * float(axis[1] - axis[0]) ** 2
    return {"simple": minus_log_prior - math.log(integral),
            "accurate": minus_log_prior - math.log(2 * math.pi) + 0.5 * math.log(2 * h2)}
