"""Figures from records only: ``python -m harness figures DIR [--out DIR] [--scaling FILE ...]``.

Every figure is drawn for whichever solvers appear in the records (colours are fixed per solver
name across figures); a figure whose data is absent from the directory is skipped with a note.
Bands are ± one standard deviation over seeds (none with one seed).

=============================  ===========================================================
file                           what
=============================  ===========================================================
``density_<problem>.png``      x–t heatmaps of the first coordinate's marginal density, the
                               reference beside each solver (harmonic_1d, harmonic_1d_moving,
                               singular_1d); each time row is scaled by the reference's peak
``mean_var_<problem>_d<d>.png``  mean and variance of x₁ against t, reference dashed
``cost_vs_d_<problem>.png``    seconds per iteration and training seconds against d, log–log,
                               every solver (Crank–Nicolson included) on the same axes, plus
                               ``--scaling`` studies
``error_vs_d_<problem>.png``   errors against d, statistical floors dashed
``bosons_d2_d3.png``           bosons at d = 2 and 3 against the grid reference
``bosons_com_invariant.png``   Var((1/d)Σxᵢ) against its exact value ħ/(2dmω) over t at the
                               largest d, and its worst relative error against d
``singular_1d_variance.png``   variance against t with the exact Schrödinger spreading
                               σ² + (ħt/2mσ)² and the Brownian-motion heat kernel ħt/m
=============================  ===========================================================
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from core.io import atomic_write  # noqa: E402

from .. import records  # noqa: E402
from .anytime import anytime_figure, anytime_groups  # noqa: E402
from .common import Skip, Style, by_d_problems, dim_of  # noqa: E402
from .dimensions import cost_vs_d, error_vs_d  # noqa: E402
from .solutions import (HEAT_KERNEL_LABEL, bosons_small_d, com_invariant, density,  # noqa: E402
                        mean_var, singular)

__all__ = ["make_figures", "load_scaling", "Skip", "DENSITY_PROBLEMS", "HEAT_KERNEL_LABEL"]

DENSITY_PROBLEMS = ("harmonic_1d", "harmonic_1d_moving", "singular_1d", "superposition",
                    "harmonic_driven", "double_well")
DPI = 130

# --- driver ----------------------------------------------------------------------------------
def load_scaling(paths) -> list[dict[str, Any]]:
    """Scaling studies written by ``python -m harness scaling``; ValueError if one is not."""
    out = []
    for path in paths:
        try:
            study = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"--scaling {path}: cannot read a JSON study: {exc}") from None
        if not isinstance(study, dict) or not {"problem", "solver", "results"} <= set(study):
            raise ValueError(f"--scaling {path}: not a study from 'python -m harness scaling'")
        out.append(study)
    return out


def make_figures(directory: Path, out_dir: Path, scaling: list[dict[str, Any]] = (),
                 note: Callable[[str], None] = print) -> list[Path]:
    """Draw every figure the records in ``directory`` allow into ``out_dir``; return the paths.

    Figures that cannot be drawn are reported through ``note`` and skipped.
    """
    ok = [rec for _, rec in records.iter_records(directory)
          if rec.get("status") == "ok" and "observables" in rec]
    if not ok and not scaling:
        raise Skip(f"no ok run records in {directory}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sns.set_theme(style="whitegrid", context="paper")
    style = Style([r["solver"]["name"] for r in ok] + [s["solver"]["name"] for s in scaling])
    jobs: list[tuple[str, Callable[[], Any]]] = []
    for problem, d in anytime_groups(ok):
        jobs.append((f"anytime_{problem}_d{d}.png",
                     lambda p=problem, d=d: anytime_figure(ok, style, p, d)))
    for problem in DENSITY_PROBLEMS:
        jobs.append((f"density_{problem}.png", lambda p=problem: density(ok, style, p)))
    for problem, d in sorted({(r["problem"]["name"], dim_of(r)) for r in ok}):
        jobs.append((f"mean_var_{problem}_d{d}.png",
                     lambda p=problem, d=d: mean_var(ok, style, p, d)))
    multi_d = by_d_problems(ok)
    for problem in sorted(set(multi_d) | {s["problem"]["name"] for s in scaling}):
        jobs.append((f"cost_vs_d_{problem}.png", lambda p=problem: cost_vs_d(ok, style, p, scaling)))
    for problem in multi_d:
        jobs.append((f"error_vs_d_{problem}.png", lambda p=problem: error_vs_d(ok, style, p)))
    if not multi_d:
        note("skip error_vs_d_*.png / cost_vs_d_*.png: no problem has records at two or more "
             "dimensions")
    jobs.append(("bosons_d2_d3.png", lambda: bosons_small_d(ok, style)))
    jobs.append(("bosons_com_invariant.png", lambda: com_invariant(ok, style)))
    jobs.append(("singular_1d_variance.png", lambda: singular(ok, style)))

    written = []
    for name, draw in jobs:
        try:
            fig = draw()
        except Skip as why:
            note(f"skip {name}: {why}")
            continue
        path = out_dir / name
        try:
            atomic_write(path, lambda fh: fig.savefig(fh, dpi=DPI, format="png"), binary=True)
        finally:
            plt.close(fig)
        written.append(path)
    return written
