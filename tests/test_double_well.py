"""The double well (issue 13): validation, exact initial energy, and its two-method grid
reference with the crossed fraction."""

import numpy as np
import pytest

import problems
from core import ParameterError

TIMES = np.linspace(0.0, 3.0, 101)


def test_dimension_is_one_or_two():
    assert problems.get("double_well").d == 1
    assert problems.get("double_well", d=2).d == 2
    with pytest.raises(ParameterError, match="'d'"):
        problems.get("double_well", d=3)


def test_initial_energy_and_spread_match_quadrature_and_monte_carlo():
    p = problems.get("double_well", d=2)
    # <H> = <T> + <V> at t = 0 by Monte Carlo of Nelson's energy m/2 (|u|^2 + |v|^2) + V
    x = p.sample_x0(400_000, np.random.default_rng(0))
    e = 0.5 * p.mass * ((p.u0(x) ** 2).sum(-1) + (p.v0(x) ** 2).sum(-1)) + p.potential(x)
    assert e.mean() == pytest.approx(p.exact_energy(), rel=2e-3)
    # the Wigner spread: x and p independent Gaussians per coordinate
    rng = np.random.default_rng(1)
    n = 400_000
    xs = p.sample_x0(n, rng)
    ps = p.hbar * p.phase + p.hbar / (2 * np.sqrt(p.sigma2)) * rng.standard_normal((n, 2))
    energy = (ps**2).sum(-1) / (2 * p.mass) + p.potential(xs)
    assert energy.std() == pytest.approx(p.energy_spread(), rel=0.01)
    assert energy.mean() == pytest.approx(p.exact_energy(), rel=2e-3)


def test_box_covers_both_wells_and_barrier_is_a_few_zero_point_energies():
    p = problems.get("double_well")
    hint = p.grid_hint()
    assert hint.lo[0] < -1.5 * p.b and hint.hi[0] > 1.5 * p.b
    zpe = p.hbar * p.well_omega / 2
    assert 3 <= p.barrier / zpe <= 10
    # the mean energy sits near the barrier top: partial crossing, not tunnelling alone
    assert 0.8 < p.exact_energy() / p.barrier < 1.3


def test_grid_reference_crosses_a_fraction_and_is_checked_by_crank_nicolson():
    """The 1-D reference (computed here, in the test session's cache): by T between 20 % and
    80 % of the probability is past the barrier; Crank–Nicolson agrees; energy is conserved."""
    p = problems.get("double_well")
    ref = p.reference()
    assert ref.kind == "grid" and ref.method == "split_operator"
    crossed = ref.crossed(TIMES)
    assert crossed[0] < 1e-6
    assert 0.2 < crossed[-1] < 0.8, crossed[-1]
    assert np.allclose(crossed, p.crossed(lambda c, x: ref.marginal_cdf(c, x, TIMES)))
    conv = ref.describe()["convergence"]
    assert conv["method"] == "crank_nicolson"
    assert conv["var_rel_l2"] < 1e-4 and conv["mean_abs_max"] < 1e-4
    assert conv["marginal_w1_max"] < 1e-3
    sol = ref.solution(TIMES)
    assert sol.energy[0] == pytest.approx(p.exact_energy(), rel=1e-6)
    assert np.ptp(sol.energy) / sol.energy[0] < 1e-6  # the splitting's modified energy
    assert sol.info["max_wall_mass"] < 1e-10
    # bimodal at T: density on both sides of the barrier, little on top of it
    x = sol.marginal_x[0]
    dens = sol.marginal_density[-1, 0]
    left, right = dens[x < -0.3].max(), dens[x > 0.3].max()
    assert min(left, right) > 3 * dens[np.abs(x) < 0.05].max()


def test_two_dimensional_reference_has_the_one_dimensional_marginals():
    """V is a sum and psi0 a product: each coordinate of d = 2 evolves as d = 1."""
    one = problems.get("double_well").reference()
    two = problems.get("double_well", d=2).reference()
    assert np.allclose(two.var(TIMES)[:, 0], one.var(TIMES)[:, 0], rtol=1e-6)
    assert np.allclose(two.var(TIMES)[:, 1], one.var(TIMES)[:, 0], rtol=1e-6)
    assert np.allclose(two.crossed(TIMES), one.crossed(TIMES), atol=1e-6)
    assert two.describe()["convergence"]["var_rel_l2"] < 1e-4
