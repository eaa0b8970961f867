"""The shared parameter machinery: conversion, ranges, fixed values, unknown names, parsing."""

import pytest

import problems
from core import ParameterError


def test_ints_become_floats_so_equal_settings_hash_equal():
    a = problems.get("harmonic_1d", omega=2)
    b = problems.get("harmonic_1d", omega=2.0)
    assert a == b and hash(a) == hash(b)
    assert isinstance(a.omega, float)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"hbar": -1.0}, "hbar"),
    ({"hbar": 0.0}, "(0, inf)"),
    ({"sigma2": float("nan")}, "finite"),
    ({"omega": float("inf")}, "finite"),
    ({"d": 2.5}, "integer"),
    ({"mass": "heavy"}, "number"),
    ({"d": True}, "integer"),
])
def test_bad_values_name_the_parameter_and_range(kwargs, fragment):
    with pytest.raises(ParameterError, match="harmonic_nd") as err:
        problems.get("harmonic_nd", **kwargs)
    assert fragment in str(err.value)
    assert next(iter(kwargs)) in str(err.value)


def test_unknown_parameter_is_an_error_not_ignored():
    with pytest.raises(ParameterError, match="unknown parameter 'omgea'.*known: d, hbar"):
        problems.get("harmonic_1d", omgea=1.0)


def test_fixed_dimension_of_1d_presets_explains_the_alternative():
    with pytest.raises(ParameterError, match="fixed at 1.*harmonic_nd"):
        problems.get("harmonic_1d", d=2)


def test_parse_converts_command_line_strings():
    cls = problems.problem_class("harmonic_nd")
    assert cls.parse_params({"d": "4", "omega": "1e-1"}) == {"d": 4, "omega": 0.1}
    with pytest.raises(ParameterError, match="expects an integer"):
        cls.parse_params({"d": "four"})
    with pytest.raises(ParameterError, match="unknown parameter"):
        cls.parse_params({"dim": "4"})


def test_describe_range():
    specs = problems.problem_class("harmonic_nd").param_specs()
    assert specs["hbar"].describe_range() == "(0, inf)"
    assert specs["omega"].describe_range() == "[0, inf)"
    assert specs["d"].describe_range() == "[1, 4096]"
