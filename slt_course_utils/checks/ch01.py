"""Checks for chapter 01, Fisher information and regular models (solutions/01_fisher_information.ipynb)."""

from __future__ import annotations

import math

import torch

from slt_course_utils import fisher, models, posterior
from slt_course_utils.checks._core import (
    CheckFailure,
    assert_close,
    call_student,
    exercise_check,
    too_large_or_small,
)

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _line_log_lik(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -models.LINE.nll(w, x, y)


def _tanh_log_lik(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -models.TANH.nll(w, x, y)


def _logistic_log_lik(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -models.LogisticRegression(2).nll(w, x, y)


def _normal_prior(w: torch.Tensor) -> torch.Tensor:
    return posterior.log_normal_prior(w).sum(-1)


def _as_float(value, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as err:
        raise CheckFailure(f"{what}: expected a single number, got {type(value).__name__} ({value!r:.80}).") from err


@exercise_check
def check_score_gaussian_regression(score_gaussian_regression) -> str:
    """s_i = ∇_w log p(y_i|x_i, w) = (y_i − w1 − w2 x_i)(1, x_i) for the line, σ = 1: vs autograd."""
    for seed, n, w in [(0, 5, [0.3, -0.5]), (1, 200, [1.0, 2.0]), (2, 1, [-0.7, 0.0])]:
        x, y = models.LINE.sample([0.3, -0.5], n, generator=_gen(seed))
        w = torch.tensor(w, dtype=F64)
        got = call_student(score_gaussian_regression, w, x, y)
        expected = fisher.scores(_line_log_lik, w, x, y)
        assert_close(
            got, expected, what=f"scores at w = {w.tolist()} for n = {n} points (shape (n, 2))", rtol=1e-8, atol=1e-10,
            hint="differentiate log p = −½ log 2π − ½(y − w1 − w2·x)² with respect to w1 and w2: the residual "
                 "times ∂f/∂w = (1, x). Stack the two columns into shape (n, 2); mind the sign.",
        )
    return "analytic scores agree with autograd on 3 data sets"


@exercise_check
def check_fisher_from_scores(fisher_from_scores) -> str:
    """I ≈ (1/n) Σ_i s_i s_iᵀ, the mean outer product (not centred, not 1/(n−1))."""
    for seed, n, d in [(3, 4, 2), (4, 7, 3), (5, 500, 1)]:
        # Arbitrary scores with a non-zero mean, so centring (a covariance) is caught.
        s = 0.5 + torch.randn(n, d, generator=_gen(seed), dtype=F64)
        got = call_student(fisher_from_scores, s)
        assert_close(
            got, s.T @ s / n, what=f"Fisher matrix from {n} scores in d = {d} (shape (d, d))", rtol=1e-10, atol=1e-12,
            hint="I = (1/n) Σ_i s_i s_iᵀ = sᵀs / n with s of shape (n, d): divide by n (not n − 1) and do "
                 "not subtract the mean — at the truth the scores have mean zero anyway.",
        )
    # On real scores of the line at its truth the answer is close to I(w0) = E[(1, x)(1, x)ᵀ] = identity.
    # The scores are s_i = ε_i(1, x_i); the entries of s_i s_iᵀ have standard deviations √2, √3 and √8
    # (E ε⁴x⁴ = 9), so the standard error at n = 20 000 is ≤ √8/√20 000 ≈ 0.02; atol 0.1 is 5 of them.
    x, y = models.LINE.sample([0.3, -0.5], 20_000, generator=_gen(6))
    s = fisher.scores(_line_log_lik, torch.tensor([0.3, -0.5], dtype=F64), x, y)
    got = call_student(fisher_from_scores, s)
    assert_close(got, torch.eye(2, dtype=F64), what="Fisher matrix of the line from 20 000 scores", rtol=0, atol=0.1)
    return "mean outer product correct; the line's Fisher matrix is the identity"


@exercise_check
def check_fisher_autograd(fisher_autograd) -> str:
    """I(w) = (1/n) Σ s_i s_iᵀ with s_i from autograd, for any log-likelihood; → analytic I for large n."""
    cases = [
        ("tanh model", _tanh_log_lik, torch.tensor([1.0, 0.5], dtype=F64), models.TANH.sample([1.0, 0.5], 40, generator=_gen(7))),
        ("line model", _line_log_lik, torch.tensor([0.2, 1.5], dtype=F64), models.LINE.sample([0.3, -0.5], 30, generator=_gen(8))),
        ("logistic regression", _logistic_log_lik, torch.tensor([1.0, -0.5], dtype=F64),
         models.LogisticRegression(2).sample([1.0, -0.5], 25, generator=_gen(9))),
    ]
    for name, log_lik, w, (x, y) in cases:
        got = call_student(fisher_autograd, log_lik, w, x, y)
        expected = fisher.fisher_information(log_lik, w, x, y, method="score")
        assert_close(
            got, expected, what=f"Fisher matrix (score form) of the {name} at w = {w.tolist()}", rtol=1e-8, atol=1e-10,
            hint="per-sample scores: torch.func.jacrev(lambda v: log_lik(v, x, y))(w) has shape (n, d); "
                 "return sᵀs / n. (The Hessian form −mean ∇² log p agrees only in expectation, not on a sample.)",
        )
    # Larger sample from the tanh model at (1, 0.5): the empirical I is within Monte Carlo error of the
    # analytic fisher_tanh. The per-sample products s_i s_j have standard deviation ≤ 0.73 (measured on
    # 200 000 draws), so the standard error at n = 2000 is ≤ 0.016; atol 0.1 is 6 standard errors.
    # (n stays at 2000 so that a jacrev-based answer, which builds n × n intermediates, fits in memory.)
    x, y = models.TANH.sample([1.0, 0.5], 2000, generator=_gen(10))
    got = call_student(fisher_autograd, _tanh_log_lik, torch.tensor([1.0, 0.5], dtype=F64), x, y)
    assert_close(got, fisher.fisher_tanh(1.0, 0.5), what="Fisher matrix of a·tanh(bx) at (1, 0.5), n = 2000, vs analytic",
                 rtol=0, atol=0.1)
    return "autograd Fisher matrices exact on 3 models, and within Monte Carlo error of the analytic one"


@exercise_check
def check_laplace_free_energy(laplace_free_energy_answer) -> str:
    """F_n ≈ nL_n(ŵ) − log φ(ŵ) + (d/2) log(n/2π) + ½ log det H; vs the reference, then vs quadrature."""
    cases = [
        (1.4, torch.tensor([[2.0]], dtype=F64), 50, -1.2),
        (0.9, torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=F64), 1000, -2.0),
        (2.1, torch.diag(torch.tensor([0.2, 3.0, 1.5], dtype=F64)), 20, -3.5),
    ]
    for loss, hess, n, log_prior in cases:
        got = call_student(laplace_free_energy_answer, loss, hess, n, log_prior)
        expected = posterior.laplace_free_energy(loss, hess, n, log_prior)
        assert_close(
            _as_float(got, "laplace_free_energy_answer"), expected,
            what=f"Laplace F_n for d = {hess.shape[0]}, n = {n}", rtol=1e-10, atol=1e-10,
            hint="expand nL_n(w) − log φ(w) to second order at ŵ and integrate the Gaussian: "
                 "∫ e^{−n Δᵀ H Δ / 2} dΔ = (2π/n)^{d/2} det(H)^{−1/2}. Keep the 2π and the prior term.",
        )
    # Against adaptive quadrature for the line (d = 2, prior N(0, I)) at n = 10 000: Laplace at the MLE
    # ignores the prior's gradient and curvature, an O(1/n) error (≈ 1e-4 here); atol 0.01 leaves room.
    model = models.LINE_STATS
    x, y = model.sample([0.3, -0.5], 10_000, generator=_gen(11))
    stats = model.statistics(x, y)
    n = stats.n
    quad = posterior.free_energy_adaptive(lambda w: model.loss_from_statistics(w, stats), _normal_prior,
                                          [(-6, 6)] * 2, n, points=65, tol=1e-6).free_energy
    w_hat = torch.linalg.solve(stats.gram, stats.cross)
    got = call_student(laplace_free_energy_answer, model.loss_from_statistics(w_hat, stats).item(),
                       stats.gram / n, n, _normal_prior(w_hat).item())
    assert_close(_as_float(got, "laplace_free_energy_answer"), quad,
                 what="Laplace vs quadrature F_n for the line, n = 10 000", rtol=0, atol=0.01)
    return "Laplace formula exact in d = 1, 2, 3 and within 0.01 nats of quadrature at n = 10 000"


@exercise_check
def check_bic(bic_answer) -> str:
    """BIC = nL_n(ŵ) + (d/2) log n (Schwarz 1978)."""
    for n, loss, d in [(100, 1.42, 2), (10_000, 0.75, 5), (37, 2.0, 1)]:
        got = call_student(bic_answer, n, loss, d)
        assert_close(
            _as_float(got, "bic_answer"), posterior.bic(n, loss, d), what=f"BIC for n = {n}, L_n(ŵ) = {loss}, d = {d}",
            rtol=1e-12, atol=1e-12,
            hint="BIC = n·L_n(ŵ) + (d/2)·log n with the natural log: the loss is multiplied by n, and each "
                 "parameter costs ½ log n (not log n, not 1).",
        )
    return "BIC = nL_n(ŵ) + (d/2) log n"


@exercise_check
def check_slope_of_free_energy(slope_of_free_energy) -> str:
    """OLS slope of values against the natural log of n (with an intercept)."""
    exact_ns = [100, 1_000, 10_000, 100_000]
    got = call_student(slope_of_free_energy, exact_ns, [0.5 * math.log(n) + 3.0 for n in exact_ns])
    assert_close(_as_float(got, "slope_of_free_energy"), 0.5, what="slope of ½ log n + 3 against log n", rtol=1e-9, atol=1e-12,
                 hint="regress on log n (natural log, numpy.log / math.log), not on n or log10 n, and fit an "
                      "intercept too: the constant 3 must not change the slope.")
    for seed in (12, 13):
        g = _gen(seed)
        ns = [int(v) for v in torch.logspace(1, 6, 8, dtype=F64)]
        values = (torch.rand(8, generator=g, dtype=F64) + 0.5) * torch.log(torch.tensor(ns, dtype=F64)) \
            + torch.randn(8, generator=g, dtype=F64)
        got = call_student(slope_of_free_energy, ns, values.tolist())
        assert_close(_as_float(got, "slope_of_free_energy"), posterior.free_energy_slope(ns, values).slope,
                     what=f"OLS slope on 8 noisy points (seed {seed})", rtol=1e-9, atol=1e-12,
                     hint="slope = Σ(u − ū)(v − v̄) / Σ(u − ū)² with u = log n.")
    return "OLS slope against log n"


def _rotated(eigenvalues: list[float], seed: int) -> torch.Tensor:
    d = len(eigenvalues)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=_gen(seed), dtype=F64))
    return q @ torch.diag(torch.tensor(eigenvalues, dtype=F64)) @ q.T


@exercise_check
def check_fisher_rank(fisher_rank_answer) -> str:
    """rank = #{eigenvalues > tol·(largest eigenvalue)}: relative, robust to round-off, 0 for the zero matrix."""
    net = models.tanh_network(2)
    cases = [
        ("diag(3, 2, 1)", torch.diag(torch.tensor([3.0, 2.0, 1.0], dtype=F64)), 1e-8),
        ("a rotated matrix with eigenvalues (5, 2, 5e-11)", _rotated([5.0, 2.0, 5e-11], 14), 1e-8),
        ("a full-rank matrix scaled by 1e-9", 1e-9 * _rotated([3.0, 1.0, 0.5], 15), 1e-8),
        ("the zero matrix", torch.zeros(3, 3, dtype=F64), 1e-8),
        ("eigenvalues (1, 1e-3, 1e-6) with tol = 1e-4", _rotated([1.0, 1e-3, 1e-6], 16), 1e-4),
        ("a tanh network with a dead unit", fisher.fisher_gaussian_regression(net, torch.tensor([1.0, -0.7, 0.0, 0.3, 1.0, 0.0], dtype=F64)), 1e-8),
        ("a generic tanh network", fisher.fisher_gaussian_regression(net, torch.tensor([1.0, -0.7, 0.5, 0.3, 1.0, 0.8], dtype=F64)), 1e-8),
    ]
    for name, info, tol in cases:
        got = call_student(fisher_rank_answer, info, tol)
        expected = fisher.fisher_rank(info, tol)
        try:
            ok = int(got) == expected and float(got) == int(got)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise CheckFailure(
                f"rank of {name} (tol = {tol:g}): got {got!r}, which is {too_large_or_small(got, expected)}."
                "\nHint: count eigenvalues (torch.linalg.eigvalsh) above tol × the LARGEST eigenvalue — a relative "
                "threshold, so rescaling I does not change its rank and round-off (~1e-17) is not counted; "
                "the zero matrix has rank 0."
            )
    return "relative-threshold rank on 7 matrices, including two tanh networks (ranks 4 and 6)"


@exercise_check
def check_linear_excess_free_energy(linear_excess_free_energy) -> str:
    """F_n − nL_n(w₀) = (d/2) log(1+n) + ½|w₀|² n/(1+n) for the linear model at population statistics."""
    # Exact against exact: rtol 1e-9 allows rounding only. Small n (1, 3) separates log(1+n) from log n and
    # n/(1+n) from 1; d = 1, 2, 3 separates d/2 from 1; w₀ = 0 isolates the log term.
    cases = [(1, [0.3, -0.5]), (3, [2.0]), (100, [0.3, -0.5]), (10_000, [1.0, 2.0, -1.0]), (7, [0.0, 0.0])]
    for n, w0 in cases:
        w0_t = torch.tensor(w0, dtype=torch.float64)
        got = call_student(linear_excess_free_energy, n, w0_t.clone())
        expected = models.linear_gaussian_excess_free_energy(n, w0_t)
        try:
            got_f = float(got)
        except (TypeError, ValueError) as err:
            raise CheckFailure(f"linear_excess_free_energy should return a float, got {got!r:.60}.") from err
        if not abs(got_f - expected) <= 1e-9 * abs(expected) + 1e-12:
            raise CheckFailure(
                f"F_n − nL_n(w0) for n = {n}, d = {len(w0)}, w0 = {w0} is {'too large' if got_f > expected else 'too small'}."
                "\nHint: complete the square in ½|w|² + (n/2)|w − w0|²: the Gaussian integral gives (1 + n)^(−d/2) "
                "(not n^(−d/2)), and the left-over term ½|w0|²·n/(1 + n) enters F_n with a PLUS sign."
            )
    return "exact for d = 1, 2, 3 and n from 1 to 10 000"
