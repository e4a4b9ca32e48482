"""Chapter 06 checks: pass on the solutions, fail on stubs and on plausible wrong answers."""

import math

import numpy as np
import pytest
import torch

from slt_course_utils.checks import ch06

from .check_suite import check_suite
from .conftest import solution_namespace

pytestmark = pytest.mark.usefixtures("one_torch_thread")


SOL = solution_namespace("06_estimating_llc")




def _step_variant(half=0.5, noise_power=0.5, use_gamma=True):
    def step(w, grad, w_star, lr, nbeta, localization, generator, noise=True):
        drift = nbeta * grad + (localization * (w - w_star) if use_gamma else 0.0)
        w_new = w - half * lr * drift
        if noise:
            w_new = w_new + lr**noise_power * torch.randn(w.shape, generator=generator, dtype=w.dtype)
        return w_new

    return step


def _chains_variant(kind):
    def sampler(loss, w_star, x, y, num_chains, num_steps, lr, nbeta, localization, generator):
        d = w_star.numel()
        f = torch.func.vmap(torch.func.grad_and_value(loss), in_dims=(0, None, None))
        w = w_star.expand(num_chains, -1).clone()
        out = torch.empty(num_chains, num_steps, dtype=w_star.dtype)
        for t in range(num_steps):
            grads, losses = f(w, x, y)
            out[:, t] = losses
            if kind == "shared noise":
                noise = torch.randn(d, generator=generator, dtype=w_star.dtype).expand(num_chains, d)
            else:
                noise = torch.randn((num_chains, d), generator=generator, dtype=w_star.dtype)
            gamma = 0.0 if kind == "no localisation" else localization
            centre = torch.zeros_like(w_star) if kind == "localisation towards 0" else w_star
            scale = lr if kind == "noise ε·ξ" else math.sqrt(lr)
            w_next = w - 0.5 * lr * (nbeta * grads + gamma * (w - centre)) + scale * noise
            if kind == "loss after the step":
                out[:, t] = torch.func.vmap(loss, in_dims=(0, None, None))(w_next, x, y)
            w = w_next
        return out

    return sampler


def _pick_variant(kind):
    def pick(sweep, exact):
        best, err = None, math.inf
        for i, lr in enumerate(sweep["lr"]):
            m = float(sweep["mean"][i, 0])
            ok = math.isfinite(m)
            if kind != "ignores levelled_off":
                ok = ok and sweep["levelled_off"][i, 0] is True
            if kind != "ignores divergence":
                ok = ok and sweep["diverged"][i, 0] < 1  # only fully diverged runs dropped
            if ok and abs(m - exact) < err:
                best, err = float(lr), abs(m - exact)
        return best

    return pick


def _usable_rows(sweep):
    return [i for i in range(len(sweep["lr"]))
            if sweep["diverged"][i, 0] == 0 and sweep["levelled_off"][i, 0] is True]


def _pick_argmin(sweep, exact):
    err = np.abs(sweep["mean"][:, 0] - exact)
    err[[i for i in range(len(err)) if i not in _usable_rows(sweep)]] = np.inf
    return float(sweep["lr"][np.argmin(err)])


def _pick_min_key(sweep, exact):
    return float(sweep["lr"][min(_usable_rows(sweep), key=lambda i: abs(sweep["mean"][i, 0] - exact))])


def _diagnose_variant(kind):
    def diagnose(result):
        d = result.diagnostics
        checks = [
            ("diverged", bool(d.get("diverged_chains"))),
            ("not a minimum", result.mean < 0),
            ("not equilibrated", not d.get("levelled_off") if kind == "None counts as failure" else d.get("levelled_off") is False),
            ("localisation-dominated", d.get("lambda_quadratic") is not None
             and (result.mean if kind == "mean instead of lambda_quadratic" else d["lambda_quadratic"])
             < 0.5 * d["lambda_quadratic_no_localization"]),
        ]
        if kind == "wrong order":
            checks = checks[2:] + checks[:2]
        for name, hit in checks:
            if hit:
                return name
        return "ok"

    return diagnose


CASES = {
    "check_sgld_step": (
        SOL["sgld_step"],
        {
            "missing the ½": _step_variant(half=1.0),
            "noise scale ε instead of √ε": _step_variant(noise_power=1.0),
            "no localisation": _step_variant(use_gamma=False),
        },
    ),
    "check_llc_from_trace": (
        SOL["llc_from_trace"],
        {
            "β instead of nβ": lambda tr, ls, n, beta: beta * (tr.mean(1) - ls),
            "L(w*) not subtracted": lambda tr, ls, n, beta: n * beta * tr.mean(1),
            "mean over chains": lambda tr, ls, n, beta: n * beta * (tr.mean(0) - ls),
        },
    ),
    "check_sgld_chains": (
        SOL["sgld_chains"],
        {kind: _chains_variant(kind) for kind in ("shared noise", "no localisation", "localisation towards 0", "loss after the step",
                                                  "noise ε·ξ")},
    ),
    "check_nbeta_defaults": (
        SOL["nbeta_defaults"],
        {
            "log10": lambda n, b: (n / math.log10(n), math.inf if b == 1 else b / math.log10(b)),
            "devinterp with n": lambda n, b: (n / math.log(n), n / math.log(n)),
            "B = 1 divides by zero": lambda n, b: (n / math.log(n), b / math.log(b)),
        },
    ),
    "check_pick_lr": (
        SOL["pick_lr"],
        {**{kind: _pick_variant(kind) for kind in ("ignores levelled_off", "ignores divergence")},
         "skips the NaN test (np.argmin)": _pick_argmin,
         "skips the NaN test (min with a key)": _pick_min_key},
    ),
    "check_diagnose": (
        SOL["diagnose"],
        {kind: _diagnose_variant(kind) for kind in ("wrong order", "None counts as failure", "mean instead of lambda_quadratic")},
    ),
    "check_sgld_stationary_variance": (
        SOL["sgld_stationary_variance"],
        {
            "continuous-time 1/a": lambda lr, a: 1 / a,
            "missing the ½ (ρ = 1 − εa)": lambda lr, a: math.inf if lr * a >= 2 else lr / (1 - (1 - lr * a) ** 2),
            "factor 1/(1 − εa/2)": lambda lr, a: math.inf if lr * a >= 4 else 1 / (a * (1 - lr * a / 2)),
            "no stability check": lambda lr, a: lr / (1 - (1 - lr * a / 2) ** 2) if lr * a != 4 else math.inf,
            "variance of ε only, √ε dropped": lambda lr, a: math.inf if lr * a >= 4 else lr**2 / (1 - (1 - lr * a / 2) ** 2),
        },
    ),
}


test_check_passes_on_the_solution, test_check_fails_on_the_stub, test_check_rejects_a_plausible_wrong_answer = (
    check_suite(ch06, CASES)
)


def test_reference_helpers():
    from slt_course_utils import llc_diagnostics, llc_models

    assert llc_diagnostics.devinterp_default_nbeta(100) == pytest.approx(100 / math.log(100))
    with pytest.raises(ValueError, match="usable"):
        llc_diagnostics.pick_lr(ch06._sweep([0.1] * 5, [False] * 5, [0] * 5), 0.25)
    x, y = llc_models.normal_crossing_data(200)
    assert abs(float(x @ y)) < 1e-10  # residualised: w* = 0 is the exact empirical minimum
    model = llc_models.NormalCrossing([1, 2])
    loss = llc_models.normal_crossing_flat_loss([1, 2])
    w = torch.tensor([0.3, -0.7], dtype=torch.float64)
    with torch.no_grad():
        model.w.copy_(w)
    with torch.no_grad():
        assert float(loss(w, x, y)) == pytest.approx(float(llc_models.gaussian_nll(model(x), y)))
    net = llc_models.linear_chain([3, 2, 3], 1)
    assert torch.linalg.matrix_rank(net[1].weight @ net[0].weight).item() == 1
    with pytest.raises(ValueError):
        llc_models.NormalCrossing([])


def test_sgld_chains_noise_scale_message_names_the_square_root():
    with pytest.raises(AssertionError) as err:
        ch06.check_sgld_chains(_chains_variant("noise ε·ξ"))
    assert "√ε" in str(err.value) and "identical" not in str(err.value)


def test_pick_lr_nan_message_says_what_is_wrong():
    with pytest.raises(AssertionError) as err:
        ch06.check_pick_lr(_pick_argmin)
    assert "not a number" in str(err.value)
