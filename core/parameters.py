"""Declared, validated parameters shared by problems and solvers.

A parametrised object is a frozen dataclass whose fields are declared with :func:`param`.  The
declaration carries the default, the allowed range and a one-line description, so that
construction validates every value, ``python -m harness list`` can show them, and the command line
can parse ``--set KEY=VALUE`` strings into the right type.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, ClassVar, get_type_hints

__all__ = ["ParamSpec", "Parametrized", "param", "ParameterError"]


class ParameterError(ValueError):
    """A parameter name or value that cannot be accepted; the message says why and what is allowed."""


@dataclass(frozen=True)
class ParamSpec:
    """What a parameter accepts: its type, default, range or choices, and a description."""

    name: str
    type: type
    default: Any
    doc: str = ""
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple | None = None
    fixed: bool = False
    fixed_hint: str = ""

    def describe_range(self) -> str:
        """The allowed values in words, for listings and error messages."""
        if self.fixed:
            return f"fixed at {self.default!r}"
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.type is bool:
            return "true or false"
        if self.lo is None and self.hi is None:
            return "any finite value" if self.type is float else f"any {self.type.__name__}"
        left = "(" if self.lo_open or self.lo is None else "["
        right = ")" if self.hi_open or self.hi is None else "]"
        lo = "-inf" if self.lo is None else _fmt(self.lo)
        hi = "inf" if self.hi is None else _fmt(self.hi)
        return f"{left}{lo}, {hi}{right}"

    def check(self, value: Any, owner: str) -> Any:
        """Return ``value`` converted to this parameter's type, or raise :class:`ParameterError`."""
        where = f"{owner}: parameter '{self.name}'"
        value = self._convert(value, where)
        if self.fixed and value != self.default:
            hint = f" ({self.fixed_hint})" if self.fixed_hint else ""
            raise ParameterError(f"{where} is fixed at {self.default!r}, got {value!r}{hint}")
        if self.choices is not None and value not in self.choices:
            raise ParameterError(f"{where}={value!r} is not allowed; expected {self.describe_range()}")
        if self.type in (int, float):
            if self.type is float and not math.isfinite(value):
                raise ParameterError(f"{where}={value!r} must be finite")
            below = self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo)
            above = self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi)
            if below or above:
                raise ParameterError(
                    f"{where}={_fmt(value)} is out of range; allowed {self.describe_range()}"
                )
        return value

    def _convert(self, value: Any, where: str) -> Any:
        kind = self.type
        if kind is bool:
            if isinstance(value, bool):
                return value
            raise ParameterError(f"{where} expects true or false, got {value!r}")
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ParameterError(f"{where} expects an integer, got {value!r}")
            return int(value)
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ParameterError(f"{where} expects a number, got {value!r}")
            return float(value)
        if kind is str:
            if not isinstance(value, str):
                raise ParameterError(f"{where} expects a string, got {value!r}")
            return value
        raise TypeError(f"unsupported parameter type {kind!r}")

    def parse(self, text: str, owner: str) -> Any:
        """Parse a command-line string into a validated value of this parameter's type."""
        where = f"{owner}: parameter '{self.name}'"
        text = text.strip()
        if self.type is bool:
            low = text.lower()
            if low in ("true", "1", "yes", "on"):
                value: Any = True
            elif low in ("false", "0", "no", "off"):
                value = False
            else:
                raise ParameterError(f"{where} expects true or false, got {text!r}")
        elif self.type is int:
            try:
                value = int(text)
            except ValueError:
                raise ParameterError(f"{where} expects an integer, got {text!r}") from None
        elif self.type is float:
            try:
                value = float(text)
            except ValueError:
                raise ParameterError(f"{where} expects a number, got {text!r}") from None
        else:
            value = text
        return self.check(value, owner)


def _fmt(x: float) -> str:
    return repr(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


def param(
    default: Any,
    doc: str = "",
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    choices: tuple | None = None,
    fixed: bool = False,
    fixed_hint: str = "",
) -> Any:
    """Declare a dataclass field as a validated parameter (see :class:`ParamSpec`)."""
    meta = dict(
        doc=doc, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open,
        choices=tuple(choices) if choices is not None else None,
        fixed=fixed, fixed_hint=fixed_hint,
    )
    return field(default=default, metadata={"param": meta})


class Parametrized:
    """Mixin for frozen dataclasses whose fields are declared with :func:`param`.

    Subclasses are validated on construction: values are converted to the declared type
    (``1`` becomes ``1.0`` for a float parameter, so equal settings hash equally) and checked
    against the declared range.  :meth:`from_params` additionally rejects unknown names.
    """

    kind: ClassVar[str] = "object"  # "problem" or "solver", for messages

    @classmethod
    def param_specs(cls) -> dict[str, ParamSpec]:
        """The declared parameters, in declaration order."""
        hints = get_type_hints(cls)
        specs = {}
        for f in dataclasses.fields(cls):
            meta = f.metadata.get("param")
            if meta is None:
                continue
            specs[f.name] = ParamSpec(name=f.name, type=hints[f.name], default=f.default, **meta)
        return specs

    @classmethod
    def label(cls) -> str:
        return f"{cls.kind} {getattr(cls, 'name', cls.__name__)}"

    @classmethod
    def from_params(cls, params: dict[str, Any] | None = None):
        """Construct from a mapping, raising :class:`ParameterError` for unknown or bad values."""
        params = dict(params or {})
        specs = cls.param_specs()
        unknown = sorted(set(params) - set(specs))
        if unknown:
            raise ParameterError(
                f"{cls.label()}: unknown parameter{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(u) for u in unknown)}; known: {', '.join(specs)}"
            )
        return cls(**params)

    @classmethod
    def parse_params(cls, texts: dict[str, str]) -> dict[str, Any]:
        """Parse ``{name: text}`` from the command line into typed, validated values."""
        specs = cls.param_specs()
        out = {}
        for key, text in texts.items():
            if key not in specs:
                raise ParameterError(
                    f"{cls.label()}: unknown parameter '{key}'; known: {', '.join(specs)}"
                )
            out[key] = specs[key].parse(text, cls.label())
        return out

    def __post_init__(self) -> None:
        for name, spec in self.param_specs().items():
            object.__setattr__(self, name, spec.check(getattr(self, name), self.label()))
        self.validate()

    def validate(self) -> None:
        """Cross-parameter checks; override and raise :class:`ParameterError`."""

    def params(self) -> dict[str, Any]:
        """The parameter values, in declaration order (JSON-serialisable)."""
        return {name: getattr(self, name) for name in self.param_specs()}
