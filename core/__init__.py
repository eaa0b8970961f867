"""What every layer shares: declared parameters, registries and plug-ins, atomic writes.

The flow of imports is harness -> solvers -> problems, and all of them -> core; core imports
none of them.
"""

from .io import atomic_write, atomic_write_text
from .parameters import ParameterError, Parametrized, ParamSpec, param
from .registry import PLUGINS_ENV, PluginError, Registry, load_plugins

__all__ = ["ParamSpec", "Parametrized", "param", "ParameterError", "Registry", "PluginError",
           "load_plugins", "PLUGINS_ENV", "atomic_write", "atomic_write_text"]
