"""The superposition problem: its exact reference checked against quadrature, finite differences
of the Schrödinger equation and exact samples."""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad, trapezoid
from scipy.special import ndtr

import problems
from core import ParameterError

# --- superposition ---------------------------------------------------------------------------
#: Non-default parameters, so that every factor of hbar, m, omega and c is exercised.
SUP = dict(hbar=0.2, mass=0.8, omega=1.7, center=0.3)


def _sup(d=1, **kw):
    return problems.get("superposition", d=d, **dict(SUP, **kw))


def _ks(samples, cdf):
    """sqrt(n) times the Kolmogorov–Smirnov distance between samples and a CDF."""
    xs = np.sort(samples)
    n = len(xs)
    f = cdf(xs)
    d = max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n))
    return math.sqrt(n) * d


def test_superposition_defaults_and_validation():
    p = problems.get("superposition")
    assert p.params() == dict(d=1, hbar=0.1, mass=1.0, omega=1.0, center=0.0, t_final=math.pi)
    assert problems.get("superposition", d=40).d == 40
    for bad in (dict(d=0), dict(omega=0.0), dict(hbar=-1.0), dict(mass=0.0), dict(t_final=0.0)):
        with pytest.raises(ParameterError):
            problems.get("superposition", **bad)
    ref = p.reference()
    assert ref.kind == "exact" and ref.has_observables and ref.has_velocities and ref.has_samples
    assert not ref.has_paths
    with pytest.raises(NotImplementedError):
        next(ref.sample_paths(4, np.array([0.0]), np.random.default_rng(0)))
    inv = _sup(d=3).invariants()
    assert inv.energy_conserved and inv.energy == pytest.approx(4 * 0.2 * 1.7 / 2)
    assert not inv.zero_mean and inv.com_var is None


def test_superposition_moments_by_quadrature_of_the_density():
    """Normalisation, means, variances and Var((x0 + x1)/2) of the 2-D exact density by the
    trapezoidal rule (spectrally accurate for these fast-decaying smooth functions)."""
    p = _sup(d=2)
    ref = p.reference()
    l, c, w = p.ell, p.center, p.omega
    axis = c + l * np.linspace(-11, 11, 441)
    mesh = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1)
    times = np.array([0.0, 0.4, math.pi / (2 * w), 1.3, math.pi / w])
    integ = lambda f: trapezoid(trapezoid(f, axis, axis=1), axis, axis=0)
    mean, var, com = ref.mean(times), ref.var(times), ref.com_var(times)
    assert np.allclose(mean[:, 0], c + l * np.cos(w * times))
    assert np.allclose(var[:, 0], 2 * l * l - l * l * np.cos(w * times) ** 2)
    for k, t in enumerate(times):
        rho = ref.density(mesh, t)
        assert integ(rho) == pytest.approx(1.0, abs=1e-10)
        for i in range(2):
            m_i = integ(rho * mesh[..., i])
            assert m_i == pytest.approx(mean[k, i], abs=1e-9)
            assert integ(rho * (mesh[..., i] - m_i) ** 2) == pytest.approx(var[k, i], abs=1e-9)
        xbar = mesh.mean(-1)
        mb = integ(rho * xbar)
        assert integ(rho * (xbar - mb) ** 2) == pytest.approx(com[k], abs=1e-9)


def test_superposition_marginal_and_pair_cdfs_by_quadrature():
    p = _sup(d=2)
    ref, ref1 = p.reference(), _sup(d=1).reference()
    l, c = p.ell, p.center
    times = np.array([0.0, 0.7, math.pi / p.omega])
    xs = c + l * np.array([-3.0, -1.0, -0.2, 0.6, 2.5])
    zs = l * np.array([-4.0, -1.1, 0.0, 0.9, 3.0])
    cdf0, cdf1 = ref.marginal_cdf(0, xs, times), ref.marginal_cdf(1, xs, times)
    pair = ref.pair_cdf(zs, times)
    rho1 = lambda s, t: float(ref1.density(np.array([[s]]), t)[0])
    for k, t in enumerate(times):
        for j, x in enumerate(xs):
            q, _ = quad(rho1, -np.inf, x, args=(t,), epsabs=1e-14, epsrel=1e-12)
            assert cdf0[k, j] == pytest.approx(q, abs=1e-10)
        assert np.allclose(cdf1[k], ndtr((xs - c) / l), atol=1e-15)
        for j, z in enumerate(zs):
            # P(x0 - x1 <= z) = E_{x0}[P(x1 >= x0 - z)], x1 in the ground state
            q, _ = quad(lambda s: rho1(s, t) * ndtr(-(s - z - c) / l), -np.inf, np.inf,
                        epsabs=1e-14, epsrel=1e-12)
            assert pair[k, j] == pytest.approx(q, abs=1e-10)
    with pytest.raises(NotImplementedError):
        ref1.pair_cdf(zs, times)


def test_superposition_has_nodes_at_multiples_of_pi_over_omega():
    p = _sup(d=1)
    ref = p.reference()
    l, c, w = p.ell, p.center, p.omega
    assert p.node(0) == (0.0, c - l)
    assert p.node(1) == pytest.approx((math.pi / w, c + l))
    for k in (0, 1, 2):
        t, x = p.node(k)
        rho = ref.density(np.array([[x]]), t)[0]
        near = ref.density(np.array([[x - 0.1 * l], [x + 0.1 * l]]), t)
        assert rho < 1e-28 * near.min() and near.min() > 1e-3
        # psi changes sign across the node
        psi = ref.psi(np.array([[x - 0.1 * l], [x + 0.1 * l]]), t)
        assert (psi[0] * np.conj(psi[1])).real < 0
    # psi0 is real and negative beyond its node; log rho0 is -inf and u0 has a pole there
    x0 = np.array([[c - l - 0.05 * l], [c - l + 0.05 * l]])
    assert np.allclose(p.phase0(x0), [math.pi, 0.0])
    assert np.allclose(p.psi0(x0).imag, 0.0, atol=1e-15) and p.psi0(x0)[0].real < 0 < p.psi0(x0)[1].real
    at_node = problems.get("superposition", hbar=0.5, omega=1.0, mass=1.0, center=0.0)  # l = 1/2
    node = np.array([[-0.5]])
    assert at_node.log_rho0(node)[0] == -np.inf and np.isinf(at_node.u0(node)[0, 0])
    assert np.isnan(at_node.reference().u(node, 0.0)[0, 0])  # 0/0 exactly at the node, documented
    # between nodes the density is bounded below by sin^2(omega t) / 2 times the ground state's
    x = c + l * np.linspace(-4, 4, 801)[:, None]
    for t in (0.3, math.pi / (2 * w), 1.5):
        ground = np.exp(-0.5 * ((x[:, 0] - c) / l) ** 2) / math.sqrt(2 * math.pi * l * l)
        assert np.all(ref.density(x, t) >= 0.5 * math.sin(w * t) ** 2 * ground * (1 - 1e-12))


def test_superposition_velocities_are_finite_differences_of_log_rho_and_phase():
    p = _sup(d=2)
    ref = p.reference()
    l, c, hb, m = p.ell, p.center, p.hbar, p.mass
    x = c + l * np.array([[-2.5, 0.4], [-0.5, -1.2], [0.3, 2.0], [1.7, 0.0], [3.0, -0.7]])
    h = 1e-5 * l
    for t in (0.0, 0.35, 1.1, math.pi / p.omega - 0.2):
        u, v = ref.u(x, t), ref.v(x, t)
        for k in range(2):
            e = h * np.eye(2)[k]
            dlog = (np.log(ref.density(x + e, t)) - np.log(ref.density(x - e, t))) / (2 * h)
            # the phase's difference as the angle of psi(x+h) conj(psi(x-h)): no branch cut
            dphase = np.angle(ref.psi(x + e, t) * np.conj(ref.psi(x - e, t))) / (2 * h)
            assert np.allclose(u[:, k], hb / (2 * m) * dlog, rtol=1e-6, atol=1e-9)
            assert np.allclose(v[:, k], hb / m * dphase, rtol=1e-6, atol=1e-9)
    # at t = 0 the reference is the initial state
    assert np.allclose(ref.u(x, 0.0), p.u0(x)) and np.allclose(ref.v(x, 0.0), p.v0(x))
    assert np.allclose(ref.density(x, 0.0), np.exp(p.log_rho0(x)))
    assert np.allclose(ref.psi(x, 0.0), p.psi0(x))
    assert np.allclose(np.abs(ref.psi(x, 0.9)) ** 2, ref.density(x, 0.9))


def test_superposition_psi_solves_the_schrodinger_equation():
    """i hbar psi_t = -(hbar^2/2m) Lap psi + V psi by central differences in x and t."""
    p = _sup(d=2)
    ref = p.reference()
    l, hb, m = p.ell, p.hbar, p.mass
    x = p.center + l * np.random.default_rng(2).normal(size=(10, 2)) * 1.5
    hx, ht = 1e-3 * l, 1e-4 / p.omega

    def residual(psi, t):
        dt = (psi(x, t + ht) - psi(x, t - ht)) / (2 * ht)
        lap = sum(psi(x + hx * e, t) - 2 * psi(x, t) + psi(x - hx * e, t) for e in np.eye(2)) / hx**2
        kin, pot = -hb * hb / (2 * m) * lap, p.potential(x) * psi(x, t)
        scale = np.max(np.abs(kin)) + np.max(np.abs(pot))
        return np.max(np.abs(1j * hb * dt - kin - pot)) / scale

    for t in (0.2, 1.0, 2.5, math.pi / p.omega):
        assert residual(ref.psi, t) < 1e-6
    # the check has power: the time-reversed wave function (E -> -E) fails it
    assert residual(lambda y, s: np.conj(ref.psi(y, s)), 1.0) > 0.1


def test_superposition_exact_samples_match_the_exact_law():
    p = _sup(d=2)
    ref = p.reference()
    times = np.array([0.0, 0.5, math.pi / (2 * p.omega), math.pi / p.omega])
    n = 100_000
    xs = ref.sample(n, times, np.random.default_rng(3))
    assert xs.shape == (4, n, 2)
    mean, var = ref.mean(times), ref.var(times)
    dev = xs - xs.mean(1, keepdims=True)
    se_mean = xs.std(1) / math.sqrt(n)
    se_var = np.sqrt(((dev**4).mean(1) - xs.var(1) ** 2) / n)
    assert np.all(np.abs(xs.mean(1) - mean) < 4 * se_mean)
    assert np.all(np.abs(xs.var(1) - var) < 4 * se_var)
    for k, t in enumerate(times):
        tt = np.array([t])
        assert _ks(xs[k, :, 0], lambda y: ref.marginal_cdf(0, y, tt)[0]) < 1.8
        assert _ks(xs[k, :, 0] - xs[k, :, 1], lambda z: ref.pair_cdf(z, tt)[0]) < 1.8
    # the initial sampler, NumPy and torch (the Stein identity check is in test_problems.py)
    t0 = np.array([0.0])
    cdf0 = lambda y: ref.marginal_cdf(0, y, t0)[0]
    x_np = p.sample_x0(n, np.random.default_rng(4))
    x_t = p.sample_x0(n, torch.Generator().manual_seed(4), dtype=torch.float64)
    x_32 = p.sample_x0(1000, torch.Generator().manual_seed(4), dtype=torch.float32)
    assert x_t.dtype == torch.float64 and x_32.dtype == torch.float32 and x_32.shape == (1000, 2)
    for x in (x_np, x_t.numpy()):
        assert _ks(x[:, 0], cdf0) < 1.8
        assert _ks(x[:, 1], lambda y: ndtr((y - p.center) / p.ell)) < 1.8


def test_superposition_d3_other_coordinates_are_ground_states():
    p, p1 = _sup(d=3), _sup(d=1)
    ref, ref1 = p.reference(), p1.reference()
    l, c, w = p.ell, p.center, p.omega
    times = np.array([0.0, 0.9, 2.0])
    assert np.allclose(ref.mean(times)[:, 1:], c) and np.allclose(ref.var(times)[:, 1:], l * l)
    assert np.allclose(ref.mean(times)[:, :1], ref1.mean(times))
    assert np.allclose(ref.com_var(times), (ref1.var(times)[:, 0] + 2 * l * l) / 9)
    xs = c + l * np.linspace(-3, 3, 7)
    for k in (1, 2):
        assert np.allclose(ref.marginal_cdf(k, xs, times), ndtr((xs - c) / l)[None, :])
    x = c + l * np.random.default_rng(5).normal(size=(8, 3))
    for t in (0.0, 0.9):
        ground = np.prod(np.exp(-0.5 * ((x[:, 1:] - c) / l) ** 2) / math.sqrt(2 * math.pi * l * l), -1)
        assert np.allclose(ref.density(x, t), ref1.density(x[:, :1], t) * ground)
        assert np.allclose(ref.u(x, t)[:, 1:], -w * (x[:, 1:] - c))
        assert np.allclose(ref.u(x, t)[:, :1], ref1.u(x[:, :1], t))
        assert np.allclose(ref.v(x, t)[:, 1:], 0.0)
        assert np.allclose(ref.v(x, t)[:, :1], ref1.v(x[:, :1], t))
    # Nelson's energy E[m/2 (|u|^2 + |v|^2) + V] is (d + 1) hbar omega / 2, away from the nodes
    # (at a node its Monte Carlo estimate has infinite variance)
    t = math.pi / (2 * w)
    y = ref.sample(200_000, np.array([t]), np.random.default_rng(6))[0]
    e = 0.5 * p.mass * ((ref.u(y, t) ** 2).sum(-1) + (ref.v(y, t) ** 2).sum(-1)) + p.potential(y)
    assert e.mean() == pytest.approx(p.exact_energy(), abs=4 * e.std() / math.sqrt(len(e)))
    assert p.exact_energy() == pytest.approx(2 * p.hbar * w)


def test_superposition_torch_matches_numpy_with_per_point_times():
    p = _sup(d=2)
    ref = p.reference()
    rng = np.random.default_rng(7)
    x = p.center + p.ell * rng.normal(size=(6, 2))
    t = rng.uniform(0.1, 3.0, size=6)
    xt, tt = torch.tensor(x), torch.tensor(t)
    for fn in ("potential", "grad_potential", "log_rho0", "phase0", "u0", "v0"):
        got = getattr(p, fn)(xt)
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
        assert np.allclose(got.numpy(), getattr(p, fn)(x), rtol=1e-12, atol=1e-12), fn
    for fn in ("u", "v", "density", "psi"):
        loop = np.stack([getattr(ref, fn)(x[i], float(t[i])) for i in range(6)])
        assert np.allclose(getattr(ref, fn)(x, t), loop, rtol=1e-12, atol=1e-14), fn
        got = getattr(ref, fn)(xt, tt)
        assert isinstance(got, torch.Tensor)
        assert np.allclose(got.numpy(), loop, rtol=1e-12, atol=1e-14), fn
    # autograd agrees with the closed-form osmotic velocity
    xg = xt.clone().requires_grad_(True)
    g, = torch.autograd.grad(torch.log(ref.density(xg, tt)).sum(), xg)
    assert torch.allclose(p.hbar / (2 * p.mass) * g, ref.u(xt, tt))


def test_superposition_grid_hint_holds_the_state():
    p = problems.get("superposition", d=2)
    ref, hint = p.reference(), p.grid_hint()
    times = np.linspace(0, p.t_final, 201)
    tail = ndtr(-5.5) * (1 + 1e-6)  # the packet's box: 5.5 standard deviations
    for k in range(2):
        assert np.all(ref.marginal_cdf(k, np.array([hint.lo[k]]), times) <= tail)
        assert np.all(1 - ref.marginal_cdf(k, np.array([hint.hi[k]]), times) <= tail)
    # the box is wider than the ground state's in the superposed coordinate (heavier tails)
    assert hint.hi[0] - hint.lo[0] > hint.hi[1] - hint.lo[1]
    # the momentum distribution beyond k_max is negligible at every t (the spectrum turns with
    # the oscillator, and has the same heavier tails as the density): FFT of psi along x_1
    x = np.linspace(p.center - 14 * p.ell, p.center + 14 * p.ell, 2048, endpoint=False)
    k = 2 * np.pi * np.fft.fftfreq(len(x), x[1] - x[0])
    ref1 = problems.get("superposition").reference()
    for t in np.linspace(0, math.pi, 9):
        power = np.abs(np.fft.fft(ref1.psi(x[:, None], t))) ** 2
        # no more than a ground state's mass beyond the packet's cut at ENVELOPE_SDS = 6
        assert power[np.abs(k) > hint.k_max].sum() / power.sum() < 2 * ndtr(-6.0)
    # the energy spread: psi0 has weight 1/2 on phi0 (E0) and 1/2 on phi1 (E1 = E0 + hbar omega)
    l = p.ell
    phi0 = lambda y: (2 * math.pi * l * l) ** -0.25 * np.exp(-((y - p.center) / (2 * l)) ** 2)
    psi0 = lambda y: p.psi0(np.array([[y, p.center]])).real[0] / phi0(p.center)
    w0 = quad(lambda y: psi0(y) * phi0(y), -np.inf, np.inf)[0] ** 2
    w1 = quad(lambda y: psi0(y) * phi0(y) * (y - p.center) / l, -np.inf, np.inf)[0] ** 2
    assert (w0, w1) == pytest.approx((0.5, 0.5), abs=1e-10)
    assert hint.e_spread == pytest.approx(math.sqrt(w0 * w1) * p.hbar * p.omega)


