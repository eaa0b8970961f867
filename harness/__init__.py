"""The harness: running solvers on problems, measuring, storing records, reporting.

Entry point: ``python -m harness {list,run,scaling,report,compare,figures}``.  Metrics are
computed here, from a solver's observables and the problem's reference, never by a solver about
itself.
"""
