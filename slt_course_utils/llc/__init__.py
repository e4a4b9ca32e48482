"""The local learning coefficient estimator λ̂(w*) of Lau et al. (arXiv 2308.12108).

    λ̂(w*) = nβ (E^β_{w|w*,γ}[L_n(w)] − L_n(w*)),   β* = 1/log n,

the expectation over the localised tempered posterior ∝ exp(−nβ L_n(w) − (γ/2)|w − w*|²).

The package is layered like BlackJAX, with a chain dimension on every tensor:

- :mod:`~slt_course_utils.llc.problem`: (model, data, loss_fn) → a flat potential on (chains, d)
  rows, input checks at w*;
- :mod:`~slt_course_utils.llc.kernels`: the samplers as pure ``init``/``step`` pairs (SGLD,
  RMSProp-SGLD, MALA) and the teaching step :func:`sgld_step`;
- :mod:`~slt_course_utils.llc.driver`: one loop that runs any kernel for all chains, freezes
  diverging chains and records the draws;
- :mod:`~slt_course_utils.llc.adapt`: ``lr="auto"``; :mod:`~slt_course_utils.llc.quadratic`:
  the quadratic model at w* (λ_quad, localisation check, predicted ε-bias);
- :mod:`~slt_course_utils.llc.convergence`: R̂/ESS/drift of the draws;
- :mod:`~slt_course_utils.llc.estimator` (:func:`estimate_llc`), :mod:`~slt_course_utils.llc.result`
  (:class:`LLCResult`, save/load), :mod:`~slt_course_utils.llc.calibration` (grids of ε × γ or nβ, batched);
- :mod:`~slt_course_utils.llc.trajectory` (:func:`estimate_llc_trajectory`: checkpoints × chains in one
  run), :mod:`~slt_course_utils.llc.observables` (per-draw observables, :func:`sample_losses`).
"""

from slt_course_utils.llc.calibration import calibration_sweep, plot_calibration
from slt_course_utils.llc.driver import MALA_EVERY, LLCDivergenceError
from slt_course_utils.llc.estimator import default_nbeta, estimate_llc
from slt_course_utils.llc.kernels import sgld_step
from slt_course_utils.llc.observables import SampleLosses, sample_losses
from slt_course_utils.llc.problem import MAX_HESSIAN_DIM
from slt_course_utils.llc.quadratic import expected_llc_quadratic
from slt_course_utils.llc.result import LLCResult
from slt_course_utils.llc.trajectory import estimate_llc_trajectory

__all__ = [
    "LLCDivergenceError",
    "LLCResult",
    "MALA_EVERY",
    "MAX_HESSIAN_DIM",
    "SampleLosses",
    "calibration_sweep",
    "default_nbeta",
    "estimate_llc",
    "estimate_llc_trajectory",
    "expected_llc_quadratic",
    "plot_calibration",
    "sample_losses",
    "sgld_step",
]
