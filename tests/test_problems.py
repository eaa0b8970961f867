"""Problems: registry, presets, the contract for every registered problem, and exact physics."""

import json

import numpy as np
import pytest
import torch

import problems
from core import ParameterError

ALL = problems.names()


def test_registry_lists_the_shipped_problems():
    shipped = [cls.name for cls in problems._CLASSES]
    assert ALL[: len(shipped)] == shipped and len(set(ALL)) == len(ALL)
    assert all(problems.problem_class(n).name == n for n in ALL)
    with pytest.raises(ParameterError, match="unknown problem 'harmonic'"):
        problems.get("harmonic")


@pytest.mark.parametrize("name, expected", [
    ("harmonic_1d", dict(d=1, hbar=0.01, mass=1.0, omega=1.0, center=0.1, sigma2=0.1, phase=0.0, t_final=1.0)),
    ("harmonic_1d_moving", dict(d=1, hbar=0.01, mass=1.0, omega=1.0, center=0.1, sigma2=0.1, phase=-5.0, t_final=1.0)),
    ("harmonic_nd", dict(d=3, hbar=0.01, mass=1.0, omega=1.0, center=0.1, sigma2=0.1, phase=0.0, t_final=1.0)),
    ("singular_1d", dict(d=1, hbar=0.01, mass=1.0, omega=0.0, center=0.0, sigma2=1e-4, phase=0.0, t_final=1.0)),
    ("bosons", dict(d=2, hbar=0.1, mass=1.0, omega=1.0, g=1.0, s2=0.1, scaling="fixed",
                    t_final=1.0)),
    ("double_well", dict(d=1, hbar=0.1, mass=1.0, barrier=0.5, b=1.0, x0=-1.0, sigma2=0.025,
                         phase=9.0, t_final=3.0)),
])
def test_preset_defaults_are_exactly_the_specified_ones(name, expected):
    assert problems.get(name).params() == expected


# --- the contract, for every registered problem ----------------------------------------------
def _instances(name):
    cls = problems.problem_class(name)
    spec = cls.param_specs()["d"]
    if spec.fixed:
        return [problems.get(name)]
    return [problems.get(name, d=d) for d in (1, 2, 3) if spec.hi is None or d <= spec.hi]


CASES = [(p.name, p) for name in ALL for p in _instances(name)]


@pytest.fixture(params=CASES, ids=[f"{n}-d{p.d}" for n, p in CASES])
def problem(request):
    return request.param[1]


def test_spec_is_json_and_rebuilds_the_problem(problem):
    spec = json.loads(json.dumps(problem.spec()))
    assert problems.get(spec["name"], **spec["params"]) == problem


def test_gradient_of_potential_matches_finite_differences(problem, rng):
    x = rng.normal(size=(7, problem.d)) * 0.5
    eps = 1e-6
    fd = np.stack([(problem.potential(x + eps * e) - problem.potential(x - eps * e)) / (2 * eps)
                   for e in np.eye(problem.d)], axis=-1)
    assert np.allclose(problem.grad_potential(x), fd, atol=1e-6)


def test_numpy_and_torch_agree(problem, rng):
    x = rng.normal(size=(5, problem.d))
    xt = torch.tensor(x)
    for fn in ("potential", "grad_potential", "log_rho0", "phase0", "u0", "v0"):
        got = getattr(problem, fn)(xt)
        assert isinstance(got, torch.Tensor)
        assert np.allclose(got.numpy(), getattr(problem, fn)(x), rtol=1e-12, atol=1e-12), fn


def test_initial_velocities_are_the_gradients_of_log_rho_and_phase(problem, rng):
    x = torch.tensor(rng.normal(size=(6, problem.d)) * 0.1, requires_grad=True)
    grad_log_rho, = torch.autograd.grad(problem.log_rho0(x).sum(), x)
    grad_s, = torch.autograd.grad(problem.phase0(x).sum(), x)
    scale = problem.hbar / problem.mass
    assert torch.allclose(problem.u0(x), 0.5 * scale * grad_log_rho)
    assert torch.allclose(problem.v0(x), scale * grad_s)


def test_initial_density_is_normalised(problem):
    if problem.d > 2:
        pytest.skip("quadrature check in d <= 2")
    hint = problem.grid_hint()
    axes = [np.linspace(a, b, 801) for a, b in zip(hint.lo, hint.hi)]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    rho = np.abs(problem.psi0(mesh)) ** 2
    cell = np.prod([ax[1] - ax[0] for ax in axes])
    assert rho.sum() * cell == pytest.approx(1.0, abs=1e-6)


def test_samplers_draw_from_the_initial_density(problem):
    """Stein's identity, true for any density: with the score s = grad log rho0 = (2m/hbar) u0,
    samples of rho0 have E[s_i] = 0 and E[x_i s_i] = -1."""
    n = 200_000
    xs = problem.sample_x0(n, np.random.default_rng(0))
    xt = problem.sample_x0(n, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert xs.shape == (n, problem.d) and tuple(xt.shape) == (n, problem.d)
    for x in (xs, xt.numpy()):
        score = (2 * problem.mass / problem.hbar) * problem.u0(x)
        for f in (score, x * score + 1.0):
            se = f.std(0) / np.sqrt(n)
            assert np.all(np.abs(f.mean(0)) < 5 * se + 1e-12)


def test_grid_hint_is_sane(problem):
    hint = problem.grid_hint()
    assert len(hint.lo) == len(hint.hi) == problem.d
    assert all(h > l for l, h in zip(hint.lo, hint.hi))
    assert hint.k_max > 0 and hint.e_spread > 0


# --- exact physics of the packet family ------------------------------------------------------
PACKETS = [
    problems.get("harmonic_1d"),
    problems.get("harmonic_1d_moving"),
    problems.get("singular_1d"),
    problems.get("harmonic_nd", d=1, omega=2.0, hbar=0.05, phase=1.5, center=-0.3),
    problems.get("harmonic_nd", d=1, omega=0.0, phase=2.0),
]


@pytest.mark.parametrize("p", PACKETS, ids=lambda p: f"{p.name}-w{p.omega}-k{p.phase}")
def test_exact_packet_obeys_continuity_and_nelsons_equation(p):
    """rho_t = -(rho v)_x and v_t = -V'/m + (u^2/2)' - (v^2/2)' + (hbar/2m) u'' by differences."""
    ref = p.reference()
    ht = 1e-5
    m, hb = p.mass, p.hbar
    for t in (0.13, 0.5, 0.91):
        mean, var = (float(a) for a in p.moments(t)[:2])
        hx = 1e-3 * np.sqrt(var)
        x = (mean + np.linspace(-2, 2, 9) * np.sqrt(var))[:, None]

        def dx(f, order=1):
            if order == 1:
                return (f(x + hx) - f(x - hx)) / (2 * hx)
            return (f(x + hx) - 2 * f(x) + f(x - hx)) / hx**2

        rho = lambda y, s=t: ref.density(y, s)
        drho_dt = (ref.density(x, t + ht) - ref.density(x, t - ht)) / (2 * ht)
        flux = dx(lambda y: rho(y) * ref.v(y, t)[:, 0])
        assert np.allclose(drho_dt, -flux, rtol=1e-5, atol=1e-6 * np.max(np.abs(drho_dt)))

        dv_dt = (ref.v(x, t + ht) - ref.v(x, t - ht))[:, 0] / (2 * ht)
        rhs = (-p.grad_potential(x, t)[:, 0] / m
               + dx(lambda y: 0.5 * ref.u(y, t)[:, 0] ** 2)
               - dx(lambda y: 0.5 * ref.v(y, t)[:, 0] ** 2)
               + hb / (2 * m) * dx(lambda y: ref.u(y, t)[:, 0], order=2))
        assert np.allclose(dv_dt, rhs, rtol=1e-5, atol=1e-6)
        # u is the osmotic velocity of the density
        log_rho_x = dx(lambda y: np.log(rho(y)))
        assert np.allclose(ref.u(x, t)[:, 0], hb / (2 * m) * log_rho_x, rtol=1e-6)


def test_packet_reference_at_t0_is_the_initial_state(rng):
    p = problems.get("harmonic_1d_moving")
    ref = p.reference()
    x = rng.normal(size=(9, 1)) * 0.3
    assert np.allclose(ref.u(x, 0.0), p.u0(x))
    assert np.allclose(ref.v(x, 0.0), p.v0(x))
    assert np.allclose(ref.density(x, 0.0), np.exp(p.log_rho0(x)))


def test_free_limit_is_continuous_and_singular_spreads_like_schrodinger_not_heat():
    t = np.linspace(0, 1, 11)
    tiny = problems.get("harmonic_nd", d=1, omega=1e-9, phase=2.0)
    free = problems.get("harmonic_nd", d=1, omega=0.0, phase=2.0)
    for a, b in zip(tiny.moments(t), free.moments(t)):
        assert np.allclose(a, b, rtol=1e-9, atol=1e-15)
    s = problems.get("singular_1d")
    var = s.reference().var(t)[:, 0]
    assert np.allclose(var, 1e-4 + (0.01 * t / (2 * 0.01)) ** 2)
    assert not np.allclose(var[1:], 0.01 * t[1:])  # the heat kernel's hbar t / m is different


def test_exact_samples_and_marginals_match_the_moments():
    p = problems.get("harmonic_nd", d=2, phase=-3.0)
    ref = p.reference()
    times = np.array([0.0, 0.4, 1.0])
    xs = ref.sample(100_000, times, np.random.default_rng(3))
    assert xs.shape == (3, 100_000, 2)
    assert np.allclose(xs.mean(1), ref.mean(times), atol=5e-3)
    assert np.allclose(xs.var(1), ref.var(times), rtol=0.02)
    cdf = ref.marginal_cdf(0, ref.mean(times)[:, 0], times)
    assert np.allclose(np.diag(cdf), 0.5)


def test_packet_energy_matches_monte_carlo_of_nelson_energy():
    """E = E[m/2 (|u|^2 + |v|^2) + V] over X ~ rho, at t = 0 and later (conserved)."""
    p = problems.get("harmonic_nd", d=3, phase=-2.0)
    ref = p.reference()
    for t in (0.0, 0.7):
        x = ref.sample(400_000, np.array([t]), np.random.default_rng(5))[0]
        e = (0.5 * p.mass * ((ref.u(x, t) ** 2).sum(-1) + (ref.v(x, t) ** 2).sum(-1))
             + p.potential(x)).mean()
        assert e == pytest.approx(p.exact_energy(), rel=5e-3)


# --- bosons -------------------------------------------------------------------------------
def test_boson_invariants_and_initial_energy():
    b = problems.get("bosons", d=4)
    inv = b.invariants()
    assert inv.zero_mean and inv.com_var == pytest.approx(0.1 / (2 * 4))
    x = b.sample_x0(400_000, np.random.default_rng(7))
    e = (0.5 * b.mass * (b.u0(x) ** 2).sum(-1) + b.potential(x)).mean()
    assert e == pytest.approx(inv.energy, rel=3e-3)
    assert x.mean(1).var() == pytest.approx(inv.com_var, rel=0.02)


def test_boson_interaction_is_pairwise_and_symmetric(rng):
    b = problems.get("bosons", d=5)
    x = rng.normal(size=(4, 5))
    perm = rng.permutation(5)
    assert np.allclose(b.potential(x[:, perm]), b.potential(x))
    assert np.allclose(b.grad_potential(x[:, perm]), b.grad_potential(x)[:, perm])
    # shifting every particle by the same amount leaves the interaction unchanged
    shift = 0.37
    trap = lambda y: 0.5 * b.mass * b.omega**2 * (y**2).sum(-1)
    assert np.allclose(b.potential(x + shift) - trap(x + shift), b.potential(x) - trap(x))
    # the interaction's forces cancel in sum (Newton's third law)
    inter = b.grad_potential(x) - b.mass * b.omega**2 * x
    assert np.allclose(inter.sum(-1), 0.0, atol=1e-12)


@pytest.mark.parametrize("d", [2, 5])
def test_mean_field_scaling_divides_the_pair_strength_by_d_minus_one(d, rng):
    fixed = problems.get("bosons", d=d, g=0.8)
    mean_field = problems.get("bosons", d=d, g=0.8, scaling="mean_field")
    same = problems.get("bosons", d=d, g=0.8 / (d - 1))
    x = rng.normal(size=(6, d))
    assert np.allclose(mean_field.potential(x), same.potential(x))
    assert np.allclose(mean_field.grad_potential(x), same.grad_potential(x))
    assert mean_field.exact_energy() == pytest.approx(same.exact_energy())
    assert np.allclose(mean_field.potential(x), fixed.potential(x)) == (d == 2)


def test_boson_reference_kind_depends_on_dimension():
    assert problems.get("bosons", d=3).reference().kind == "grid"
    big = problems.get("bosons", d=16).reference()
    assert big.kind == "invariants" and not big.has_observables
    with pytest.raises(NotImplementedError):
        big.var(np.array([0.0]))


@pytest.mark.parametrize("d", [2, 3, 5])
def test_boson_energy_spread_formula_matches_monte_carlo(d):
    """Var(H) in psi0 equals Var(V_int) under rho0 (psi0 is a trap eigenstate)."""
    b = problems.get("bosons", d=d)
    x = b.sample_x0(1_000_000, np.random.default_rng(11))
    trap = 0.5 * b.mass * b.omega**2 * (x**2).sum(-1)
    inter = b.potential(x) - trap
    assert inter.std() == pytest.approx(b.energy_spread(), rel=0.01)
