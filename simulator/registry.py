"""Finding scenarios: the built-in ones, installed packages' ones, and a user's own.

The one resolver the command line, the app and sweeps use is :func:`get_model`. A scenario is
named by

* a **registered name**: a built-in scenario (the ``models`` package beside ``simulator``) or
  one an installed package declares in the entry-point group ``neuropop.scenarios``
  (``[project.entry-points."neuropop.scenarios"] my_scenario = "my_pkg.scenarios:MyScenario"``);
* a **reference** ``MODULE:CLASS``, where MODULE is a dotted module importable from the current
  folder (``my_scenarios:Crowd``, ``lab.models:Crowd``) or a path to a ``.py`` file
  (``./crowd.py:Crowd``, ``/home/me/crowd.py:Crowd``).

The built-in scenarios are always imported from the package installed beside ``simulator``:
a ``models.py`` or ``models/`` folder of the user's in the current folder never replaces them
(and ``models:MyScenario`` still finds the user's file). Only if a foreign module called
``models`` was imported before does :func:`load_registry` stop with a one-line error saying
what shadows what.

``simulator`` never imports ``models`` at module level (the engine does not depend on its
scenarios); only the functions here do.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
import warnings
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from simulator.config import ParameterError

if TYPE_CHECKING:
    from simulator.model import NeuralModel

__all__ = [
    "ENTRY_POINT_GROUP",
    "builtin_registry",
    "get_model",
    "load_registry",
    "own_parameters",
    "resolve_reference",
]

ENTRY_POINT_GROUP = "neuropop.scenarios"
BUILTIN_DIR = Path(__file__).resolve().parent.parent / "models"


def _inside(path: str | None, folder: Path) -> bool:
    return path is not None and Path(path).resolve().parent == folder


def _builtin_package() -> ModuleType:
    """The ``models`` package beside ``simulator``, imported under its own name."""
    loaded = sys.modules.get("models")
    if loaded is not None:
        if _inside(getattr(loaded, "__file__", None), BUILTIN_DIR):
            return loaded
        where = getattr(loaded, "__file__", None) or "a module without a file"
        raise ParameterError(
            f"the built-in scenarios package 'models' ({BUILTIN_DIR}) is shadowed by {where}, "
            "imported earlier under the same name; rename that module"
        )
    spec = importlib.util.find_spec("models")
    if spec is not None and _inside(spec.origin, BUILTIN_DIR):
        return importlib.import_module("models")
    init = BUILTIN_DIR / "__init__.py"
    if not init.is_file():
        raise ParameterError(f"the built-in scenarios package is missing ({init})")
    # something else called `models` comes first on sys.path (a user's models.py in the
    # current folder): import ours from its own folder instead
    spec = importlib.util.spec_from_file_location(
        "models", init, submodule_search_locations=[str(BUILTIN_DIR)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["models"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop("models", None)
        raise
    return module


def builtin_registry() -> dict[str, type[NeuralModel]]:
    """Scenario name -> class for the built-in scenarios (the ``models`` package's REGISTRY)."""
    return dict(_builtin_package().REGISTRY)


def _entry_point_scenarios(builtin: dict[str, Any]) -> dict[str, type[NeuralModel]]:
    """Scenarios installed packages declare in the ``neuropop.scenarios`` entry-point group.

    A broken entry point or one reusing a built-in name is skipped with a warning, so one bad
    package never breaks the command line.
    """
    found: dict[str, type[NeuralModel]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in builtin or ep.name in found:
            warnings.warn(
                f"scenario {ep.name!r} from entry point {ep.value!r} is ignored: the name is "
                "already taken",
                stacklevel=3,
            )
            continue
        try:
            cls = _check_class(ep.load(), ep.value)
        except Exception as exc:
            warnings.warn(
                f"scenario {ep.name!r} from entry point {ep.value!r} could not be loaded: "
                f"{type(exc).__name__}: {exc}",
                stacklevel=3,
            )
            continue
        found[ep.name] = cls
    return found


def load_registry() -> dict[str, type[NeuralModel]]:
    """Scenario name -> NeuralModel subclass: the built-in scenarios, then installed ones."""
    builtin = builtin_registry()
    return {**builtin, **_entry_point_scenarios(builtin)}


def is_reference(name: str) -> bool:
    """True for ``MODULE:CLASS`` (a reference to a user's scenario), not a registered name."""
    return isinstance(name, str) and ":" in name.strip(":")


def get_model(name: str) -> type[NeuralModel]:
    """The scenario ``name`` (a registered name or ``MODULE:CLASS``), else a ParameterError."""
    if not isinstance(name, str):
        raise ParameterError(f"model={name!r} is not allowed; allowed: a scenario name")
    if is_reference(name):
        return resolve_reference(name)
    registry = load_registry()
    if name not in registry:
        from simulator.params import did_you_mean

        raise ParameterError(
            f"unknown scenario {name!r}{did_you_mean(name, registry)}; scenarios are: "
            f"{', '.join(sorted(registry))} (or MODULE:CLASS for your own)"
        )
    return registry[name]


def resolve_reference(ref: str) -> type[NeuralModel]:
    """The class named by ``MODULE:CLASS`` (dotted module, or a path to a ``.py`` file)."""
    module_part, _, class_name = ref.strip().rpartition(":")
    if not module_part or not class_name:
        raise ParameterError(f"model={ref!r} is not allowed; allowed: MODULE:CLASS")
    _builtin_package()  # the built-in `models` first: a user's models.py never takes its name
    module = _import_user_module(module_part, ref)
    try:
        obj = getattr(module, class_name)
    except AttributeError:
        raise ParameterError(
            f"model={ref!r}: module {module_part!r} ({getattr(module, '__file__', '?')}) has no "
            f"{class_name!r}"
        ) from None
    return _check_class(obj, ref)


def _check_class(obj: Any, ref: str) -> type[NeuralModel]:
    from simulator.model import NeuralModel

    if not (isinstance(obj, type) and issubclass(obj, NeuralModel)):
        raise ParameterError(
            f"model={ref!r} is {obj!r}, not a scenario; allowed: a subclass of "
            "simulator.NeuralModel"
        )
    return obj


def _import_user_module(module_part: str, ref: str) -> ModuleType:
    """Import a user's module: a ``.py`` path, or a dotted name importable from the cwd."""
    if module_part.endswith(".py") or os.sep in module_part or "/" in module_part:
        path = Path(module_part).expanduser()
        if not path.is_file():
            raise ParameterError(f"model={ref!r}: no such file {str(path)!r}")
        return _load_file(path.resolve())
    cwd = os.getcwd()
    local = Path(cwd, *module_part.split("."))
    local_file = local.with_suffix(".py") if local.with_suffix(".py").is_file() else None
    if local_file is None and (local / "__init__.py").is_file():
        local_file = local / "__init__.py"
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)  # importable from the current folder; installed names come first
    try:
        module = importlib.import_module(module_part)
    except ModuleNotFoundError as exc:
        if local_file is not None:
            return _load_file(local_file)
        raise ParameterError(
            f"model={ref!r}: cannot import {module_part!r} ({exc}); allowed: a module "
            "importable from the current folder or a path to a .py file"
        ) from None
    except Exception as exc:  # the module's own code raised while it was imported
        raise _import_failed(ref, exc) from exc
    if local_file is not None and not _same_file(getattr(module, "__file__", None), local_file):
        # the name belongs to another module (the built-in `models`, say): the user's file wins
        return _load_file(local_file)
    return module


def _same_file(a: str | None, b: Path) -> bool:
    return a is not None and Path(a).resolve() == b.resolve()


def _load_file(path: Path) -> ModuleType:
    """Import ``path`` as a module (once per file), under a name no other module uses."""
    for module in list(sys.modules.values()):
        if _same_file(getattr(module, "__file__", None), path):
            return module
    own = path.stem if path.name != "__init__.py" else path.parent.name
    name = own
    if name in sys.modules or importlib.util.find_spec(name) is not None:
        name = f"neuropop_user_{abs(hash(str(path))):x}_{name}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ParameterError(f"cannot import {str(path)!r}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the file's own code raised while it was imported
        sys.modules.pop(name, None)
        raise _import_failed(str(path), exc) from exc
    except BaseException:
        sys.modules.pop(name, None)
        raise
    # Processes started by spawn (mesa.batch_run forces it) import the scenario's class by its
    # module's name, with this process's sys.path: the folder holding the module goes last on
    # it (names already importable win). A module renamed to keep clear of another cannot be
    # found there by its name: said once, here.
    if name != own:
        warnings.warn(
            f"{str(path)!r} was imported as {name!r} ({own!r} is another module's name): "
            "processes started by spawn, such as mesa.batch_run's with number_processes > 1, "
            "cannot import its classes; rename the file to use them there",
            UserWarning,
            stacklevel=3,
        )
    else:
        home = str(path.parent if path.name != "__init__.py" else path.parent.parent)
        if home not in sys.path:
            sys.path.append(home)
    return module


def _import_failed(what: str, exc: Exception) -> ParameterError:
    """The error for a user's scenario module that raised while it was imported: the
    exception, and the last line of the user's code it went through (the traceback stays
    chained to the error, for Python callers)."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if "importlib" not in f.filename] or frames
    where = f" (at {own[-1].filename}:{own[-1].lineno})" if own else ""
    first = (str(exc).splitlines() or [""])[0]
    return ParameterError(
        f"{what}: importing the scenario's module raised {type(exc).__name__}: {first}{where}"
    )


def own_parameters(cls: type[NeuralModel]) -> tuple[list[str], list[str]]:
    """A scenario's own parameters and the rest, each in declaration order.

    Own: the parameters the scenario sets (``Param.own``, marked by
    ``models._base.with_defaults``), declares beyond the base ones, or whose defaults differ
    from the base ones, and any it names in an optional ``own_params`` class attribute.
    """
    from simulator.model_params import BASE_PARAMS

    specs = cls.param_specs()
    named = set(getattr(cls, "own_params", ()))
    own = [
        name
        for name, spec in specs.items()
        if name in named
        or spec.own
        or name not in BASE_PARAMS
        or not _same_default(spec.default, BASE_PARAMS[name].default)
    ]
    return own, [name for name in specs if name not in own]


def _same_default(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:  # arrays, graphs: compared by identity
        return a is b
