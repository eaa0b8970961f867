"""The residuals of the stochastic-mechanics equations at sample points.

For velocity fields u, v (DESIGN.md section 2) the residuals are

    r_u = du/dt + grad<u, v> + (hbar/2m) grad(div v)
    r_v = dv/dt + grad V / m - 1/2 grad|u|^2 + 1/2 grad|v|^2 - (hbar/2m) grad(div u)

(the gradient-of-divergence form, ``equations="divergence"``), or, in Nelson's original form
(``equations="nelson"``), the v-residual with (u.grad)u - (v.grad)v and the vector Laplacian:

    r_v = dv/dt + grad V / m - (u.grad)u + (v.grad)v - (hbar/2m) Laplacian(u).

Both vanish for the exact velocities of any solution.  With J_u the Jacobian dx u,
grad<u, v> = J_u^T v + J_v^T u, 1/2 grad|u|^2 = J_u^T u and (u.grad)u = J_u u.

Derivative modes (what the cost study compares):

``derivatives="func"`` (default)
    Per point, with torch.func: one forward pass carrying the value and d + 1 tangents (d space
    directions and time) gives u, v, both Jacobians and both time derivatives; one reverse pass
    of div u + div v with respect to the networks' separate input copies gives grad div u and
    grad div v.  Cost ~ (d + 2) network evaluations, each O(dH + H^2).
``derivatives="loop"``
    The original implementation's way: batched autograd with one reverse pass per output
    dimension for each Jacobian row and time derivative (a Python loop over d).
``divergence="hutchinson"`` (with ``func``)
    div is estimated by eps^T J eps with Rademacher probes, its gradient by one reverse pass;
    the quadratic terms come from reverse passes of scalars (no Jacobians).  Two independent
    probe sets give two residual estimates r1, r2, so that r1 . r2 is an unbiased estimate of
    |r|^2 (a single estimate squared would be biased by its variance).  Cost independent of d
    apart from the network itself.

Every function returns a dict with residual factors ``ru1, ru2, rv1, rv2`` (shape (n, d)): the
loss is mean(sum(ru1 * ru2)) and likewise for v; exact modes return the same tensor twice.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.func import jacfwd, jvp, vmap

__all__ = ["residuals", "EQUATIONS", "DERIVATIVES", "DIVERGENCES"]

EQUATIONS = ("divergence", "nelson")
DERIVATIVES = ("func", "loop")
DIVERGENCES = ("exact", "hutchinson")

#: uv(xu, xv, t) -> (u, v): the velocity model; per point (shapes (d,), ()) or batched.
VelocityFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def residuals(uv: VelocityFn, x: torch.Tensor, t: torch.Tensor, grad_v: torch.Tensor, *,
              hbar: float, mass: float, equations: str = "divergence",
              derivatives: str = "func", divergence: str = "exact", probes: int = 1,
              generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Residual factors at points ``x`` (n, d), times ``t`` (n,); ``grad_v`` is grad V (n, d)."""
    if equations not in EQUATIONS:
        raise ValueError(f"equations must be one of {EQUATIONS}")
    if derivatives not in DERIVATIVES:
        raise ValueError(f"derivatives must be one of {DERIVATIVES}")
    if divergence not in DIVERGENCES:
        raise ValueError(f"divergence must be one of {DIVERGENCES}")
    c = hbar / (2.0 * mass)
    force = grad_v / mass
    if divergence == "hutchinson":
        if derivatives != "func" or equations != "divergence":
            raise ValueError("divergence=hutchinson needs derivatives=func and equations=divergence")
        return _hutchinson(uv, x, t, force, c, probes, generator)
    if derivatives == "func":
        terms = _exact_func(uv, x, t, nelson=equations == "nelson")
    else:
        terms = _exact_loop(uv, x, t, nelson=equations == "nelson")
    u, v, ju, jv, dtu, dtv, gdiv_u, gdiv_v = (terms[k] for k in
                                               ("u", "v", "ju", "jv", "dtu", "dtv", "gdu", "gdv"))
    # J^T w as batched products: (J^T w)_j = sum_i J_ij w_i
    jt = lambda j, w: torch.einsum("nij,ni->nj", j, w)  # noqa: E731
    ru = dtu + jt(ju, v) + jt(jv, u) + c * gdiv_v
    if equations == "divergence":
        rv = dtv + force - jt(ju, u) + jt(jv, v) - c * gdiv_u
    else:
        jw = lambda j, w: torch.einsum("nij,nj->ni", j, w)  # noqa: E731
        rv = dtv + force - jw(ju, u) + jw(jv, v) - c * terms["lap_u"]
    return {"ru1": ru, "ru2": ru, "rv1": rv, "rv2": rv, "u": u, "v": v}


def _leaves(x, t):
    """Separate input copies for the u and v networks (see the module docstring)."""
    return x.detach().requires_grad_(True), x.detach().requires_grad_(True), t.detach()


def _dgrad(y, wrt):
    # a term that does not depend on `wrt` (e.g. an x-independent divergence) has zero gradient
    return torch.autograd.grad(y, wrt, create_graph=True, allow_unused=True, materialize_grads=True)


def _exact_func(uv: VelocityFn, x, t, nelson: bool) -> dict[str, torch.Tensor]:
    """Forward-mode Jacobians of the batched networks, then one reverse pass for grad div.

    A tangent shared by the whole batch gives every point its own directional derivative (the
    points are independent), so torch.func maps over the d + 1 directions only, never over
    points: matrix products stay large and weights are not copied per point.
    """
    n, d = x.shape
    xu, xv, tt = _leaves(x, t)

    def g(y):  # one tangent moves both networks' inputs and the time together
        u, v = uv(xu + y[:d], xv + y[:d], tt + y[d])
        out = torch.stack([u, v])
        return out, out

    jac, out = jacfwd(g, has_aux=True)(torch.zeros(d + 1, dtype=x.dtype, device=x.device))
    # jac: (net, point, component, direction)
    ju, jv = jac[0, :, :, :d], jac[1, :, :, :d]
    div = ju.diagonal(dim1=-2, dim2=-1).sum() + jv.diagonal(dim1=-2, dim2=-1).sum()
    gdu, gdv = _dgrad(div, (xu, xv))
    res = {"u": out[0], "v": out[1], "ju": ju, "jv": jv, "dtu": jac[0, :, :, d],
           "dtv": jac[1, :, :, d], "gdu": gdu, "gdv": gdv}
    if nelson:
        res["lap_u"] = _laplacian_u(uv, xu, tt)
    return res


def _laplacian_u(uv: VelocityFn, x, t):
    """Vector Laplacian of u: d forward-over-forward products along e_k, batched over points."""
    d = x.shape[-1]
    f = lambda z: uv(z, z, t)[0]  # noqa: E731

    def second(e):
        first = lambda z: jvp(f, (z,), (e.expand_as(z),))[1]  # noqa: E731
        return jvp(first, (x,), (e.expand_as(x),))[1]

    eye = torch.eye(d, dtype=x.dtype, device=x.device)
    return vmap(second)(eye).sum(0)


def _exact_loop(uv: VelocityFn, x, t, nelson: bool) -> dict[str, torch.Tensor]:
    """Batched autograd, one reverse pass per output dimension (the original code's way)."""
    xu, xv, _ = _leaves(x, t)
    tt = t.detach().requires_grad_(True)
    u, v = uv(xu, xv, tt)
    d = x.shape[-1]
    dgrad = _dgrad

    def rows(y, wrt):
        return [dgrad(y[:, i].sum(), wrt)[0] for i in range(d)]

    ju = torch.stack(rows(u, xu), dim=1)  # (n, i, j) = d u_i / d x_j
    jv = torch.stack(rows(v, xv), dim=1)
    dtu = torch.stack(rows(u, tt), dim=1)
    dtv = torch.stack(rows(v, tt), dim=1)
    div = ju.diagonal(dim1=1, dim2=2).sum(-1) + jv.diagonal(dim1=1, dim2=2).sum(-1)
    gdu, gdv = dgrad(div.sum(), (xu, xv))
    res = {"u": u, "v": v, "ju": ju, "jv": jv, "dtu": dtu, "dtv": dtv, "gdu": gdu, "gdv": gdv}
    if nelson:
        # one reverse pass per (component, direction) pair, as a Laplacian by loops costs
        lap = torch.zeros_like(u)
        for i in range(d):
            for k in range(d):
                g = dgrad(ju[:, i, k].sum(), xu)[0]
                lap = lap + torch.nn.functional.one_hot(torch.tensor(i), d).to(u) * g[:, k:k + 1]
        res["lap_u"] = lap
    return res


def _hutchinson(uv: VelocityFn, x, t, force, c, probes: int, generator) -> dict[str, torch.Tensor]:
    n, d = x.shape
    xu, xv, tt = _leaves(x, t)
    # Rademacher probes, per point: two independent sets of `probes`
    eps = torch.randint(0, 2, (2 * probes, n, d), generator=generator, device=x.device)
    eps = eps.to(x.dtype) * 2 - 1

    def g(dx, dt):
        u, v = uv(xu + dx, xv + dx, tt + dt)
        return torch.stack([u, v])

    zx, zt = torch.zeros_like(x), torch.zeros_like(t)
    # tangent 0: the time direction; tangents 1..: the probes (per point)
    tan_x = torch.cat([torch.zeros(1, n, d, dtype=x.dtype, device=x.device), eps])
    tan_t = torch.cat([torch.ones(1, n, dtype=x.dtype, device=x.device),
                       torch.zeros(2 * probes, n, dtype=x.dtype, device=x.device)])
    out, tan = vmap(lambda a, b: jvp(g, (zx, zt), (a, b)), out_dims=(None, 0))(tan_x, tan_t)
    u, v = out[0], out[1]
    # eps . (J eps), averaged over each set's probes: (set, net, point)
    proj = (tan[1:] * eps[:, None]).sum(-1).reshape(2, probes, 2, n).mean(1)
    scalars = [
        (u * v).sum(),                                    # grad -> J_u^T v + J_v^T u
        (-0.5 * (u * u) + 0.5 * (v * v)).sum(),           # grad -> -J_u^T u + J_v^T v
        proj[0, 0].sum() + proj[0, 1].sum(),              # grad -> grad div u, grad div v (set 1)
        proj[1, 0].sum() + proj[1, 1].sum(),              # ... (set 2)
    ]
    grads = [_dgrad(sc, (xu, xv)) for sc in scalars]
    g_uv, g_kin = grads[0][0] + grads[0][1], grads[1][0] + grads[1][1]
    ru = [tan[0, 0] + g_uv + c * grads[k][1] for k in (2, 3)]
    rv = [tan[0, 1] + force + g_kin - c * grads[k][0] for k in (2, 3)]
    return {"ru1": ru[0], "ru2": ru[1], "rv1": rv[0], "rv2": rv[1], "u": u, "v": v}
