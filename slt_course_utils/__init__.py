"""slt_course_utils: the helper package of SLT Course.

One module per idea:

- ``device``     which torch device to run on (``cuda`` > ``mps`` > ``cpu``)
- ``seeding``    reproducible random numbers
- ``plotting``   the course's plotting house style
- ``progress``   notebook-aware progress bars
- ``models``     toy statistical models and their losses
- ``posterior``  grid posteriors and free energies, in log space (adaptive quadrature, Laplace, BIC)
- ``fisher``     Fisher information: autograd and closed forms, rank and eigenvalues
- ``singular``   true-parameter sets, symmetries and Fisher ranks of singular models
- ``theory``     exact learning coefficients (RLCTs) with their sources
- ``volume``     volume scaling V(ε) ≈ c ε^λ (−log ε)^(m−1) and fits of λ
- ``sampling``   Metropolis–Hastings and HMC, vectorised over chains
- ``diagnostics`` MCMC convergence checks of a (chains, draws) trace: rank-normalised R̂, bulk/tail ESS, drift
- ``free_energy`` free-energy asymptotics: λ fits, WBIC, WAIC, generalisation error
- ``phase_transitions`` two-phase potential, local free energies, critical n, gradient descent
- ``llc``        the local learning coefficient (``estimate_llc``): sampler kernels (SGLD, RMSProp-SGLD,
  MALA), one driver for all chains, ``lr="auto"``, diagnostics; ``llc_models`` and ``llc_diagnostics``
  hold the calibration models and chapter 06's references; ``llc_toys`` its exactly solvable toys
  (the line-plus-dot model of LLC locality, 2-D finite-n targets, SGLD on a quadratic)
- ``tms``, ``dln`` toy models of superposition (k-gons), deep linear networks
- ``refined``    weight-/data-refined LLCs: restriction masks, restricted Hessians, exact restricted targets
- ``influence``  covariances over posterior draws: susceptibilities, Bayesian influence, loss kernel; exact Gaussian forms
- ``widgets``    ipywidgets explorers; ``widgets_fisher``, ``widgets_singular``, ``widgets_rlct``,
  ``widgets_phase``, ``widgets_llc``, ``widgets_tms`` hold one chapter's explorer each
- ``checks``     check functions for the exercises
- ``colab``      Colab set-up (``setup_colab()``), Colab/Binder links, the course repository address
- ``make_exercises`` / ``execute_notebooks``  notebook tooling (``python -m ...``)
- ``grade``      the instructors' autograder (``python -m slt_course_utils.grade``, docs/INSTRUCTORS.md)
"""

from slt_course_utils.device import get_device
from slt_course_utils.seeding import set_seed

__version__ = "0.1.0"
__all__ = ["get_device", "set_seed", "__version__"]
