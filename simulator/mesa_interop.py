"""What Mesa's own tools pass to a NeuralModel and expect back from it.

* **Scenarios.** Since Mesa 3.5 every ``mesa.Model`` has a ``scenario`` (a
  :class:`mesa.experimental.scenarios.Scenario`: a seed plus parameter values). SolaraViz's
  Reset, which is also how it applies changed parameters, rebuilds the model as
  ``type(model)(**params, scenario=Scenario(**scenario_only_params))`` (see
  ``mesa.visualization.solara_viz._build_model_init_kwargs``): for a model whose ``__init__``
  takes ``**kwargs`` it always adds ``scenario=``, usually an empty one with ``rng=None``.
  :func:`scenario_arguments` turns such a scenario into ordinary model parameters, so a
  NeuralModel built from ``scenario=Scenario(rng=1, n_agents=30)`` equals one built from
  ``rng=1, n_agents=30``.
* **Agent tables.** Mesa's ``DataCollector.get_agent_vars_dataframe`` raises when no agent
  reporter is defined. A NeuralModel's own collector (:class:`NeuralDataCollector`) answers
  with the per-agent tables the model computes without a Python loop over agents (one row
  per agent every ``agent_every`` collected steps), indexed like Mesa's (``Step``,
  ``AgentID``). String agent reporters (``agent_reporters={"loss": "loss"}``) work in a
  user's own ``mesa.DataCollector``: NeuralAgent exposes ``loss``, ``fitness``, ``degree`` as
  properties. Mesa then calls them once per agent in Python, which is fine for hundreds of
  agents and slow for 100,000; ``agent_every`` is the vectorized way.
"""

from __future__ import annotations

import inspect
import warnings
from copy import deepcopy
from functools import partial
from typing import TYPE_CHECKING, Any

import mesa
import pandas as pd
from mesa.experimental.scenarios import Scenario

from simulator.config import ParameterError

if TYPE_CHECKING:
    from simulator.model import NeuralModel

__all__ = ["NeuralDataCollector", "scenario_arguments"]

# Scenario attributes that are bookkeeping, not parameters
_SCENARIO_INTERNAL = {"rng", "model", "_scenario_id"}


def scenario_arguments(scenario: Any, rng: Any, kwargs: dict[str, Any]) -> tuple[Any, dict]:
    """The seed and parameters a model gets from ``scenario`` together with ``rng``/``kwargs``.

    Parameters
    ----------
    scenario : mesa.experimental.scenarios.Scenario or None
        Its attributes (other than ``rng``) are model parameters; its ``rng`` is the seed
        when ``rng`` is None.
    rng : int, str or None
        The seed given directly.
    kwargs : dict
        Parameters given directly; a parameter given both ways with different values is an
        error.

    Returns
    -------
    (rng, kwargs)
        The seed to use (may still be None: a fresh one is drawn) and the merged parameters.
    """
    if scenario is None:
        return rng, kwargs
    if not isinstance(scenario, Scenario):
        raise ParameterError(
            f"scenario={scenario!r} is not allowed; allowed: a mesa Scenario "
            "(mesa.experimental.scenarios.Scenario) or None"
        )
    values = {k: v for k, v in vars(scenario).items() if k not in _SCENARIO_INTERNAL}
    clash = sorted(k for k in values if k in kwargs and kwargs[k] != values[k])
    if clash:
        raise ParameterError(
            f"{', '.join(clash)} given both as a keyword and in the scenario, with different "
            "values; give each parameter once"
        )
    scenario_rng = getattr(scenario, "rng", None)
    if rng is not None and scenario_rng is not None and str(rng) != str(scenario_rng):
        raise ParameterError(
            f"rng={rng!r} and scenario.rng={scenario_rng!r} differ; give the seed once"
        )
    return (rng if rng is not None else scenario_rng), {**values, **kwargs}


def read_measure(name: str, model: NeuralModel) -> Any:
    """DataCollector model reporter (bound with functools.partial): one measure of the model's
    last snapshot (``model._measures``)."""
    return model._measures[name]


def _own(reporter: Any) -> bool:
    """Whether a model reporter is a model's own measure reader, ``partial(read_measure, name)``."""
    return type(reporter) is partial and reporter.func is read_measure


# Values Mesa's deepcopy returns unchanged: appended as they are
_IMMUTABLE = (float, int, bool, str, type(None))


class NeuralDataCollector(mesa.DataCollector):
    """Mesa's DataCollector with the model's vectorized per-agent tables as agent data.

    ``get_agent_vars_dataframe()`` returns, when no agent reporter was defined, one row per
    agent and collected step (every ``agent_every`` steps; columns ``loss``, ``probe_loss``,
    ``fitness``, ``degree``, ``cluster``, and ``accuracy`` / ``community`` where they apply),
    indexed by ``Step`` and ``AgentID`` (the agent's Mesa ``unique_id``). With
    ``agent_every=0`` (the default) it warns and returns an empty table with that index.
    """

    def __init__(self, model: NeuralModel, **kwargs: Any):
        super().__init__(**kwargs)
        self._neural_model = model

    def collect(self, model: Any) -> None:
        """Mesa's collect, with the model's own measures (:func:`read_measure` reporters)
        appended as they are.

        Mesa deep-copies the value of every lambda or partial reporter, ~1-3 us each in a model
        step (the caches cold after the kernels), ~30 reporters a step; the model's measures
        are ints and floats, which deepcopy returns unchanged, so they are appended directly
        (another type is still deep-copied). Every other reporter (a user's: model, agent or
        agent-type) goes through Mesa's collect as before, and ``model_reporters`` is left as
        it was."""
        reporters = self.model_reporters
        measures = getattr(model, "__dict__", {}).get("_measures")
        own = [(var, r.args[0]) for var, r in reporters.items() if _own(r)]
        if not own or not isinstance(measures, dict):
            super().collect(model)
            return
        # Mesa only notes the step when it has a model reporter left
        if len(own) == len(reporters) and hasattr(self, "_collection_steps"):
            self._collection_steps.append(model.time)
        self.model_reporters = {k: r for k, r in reporters.items() if not _own(r)}
        try:  # the other reporters, agent and agent-type ones, as Mesa does
            super().collect(model)
        finally:
            self.model_reporters = reporters
        columns = self.model_vars
        for var, name in own:
            value = measures[name]
            columns[var].append(value if type(value) in _IMMUTABLE else deepcopy(value))

    def get_agent_vars_dataframe(self) -> pd.DataFrame:
        """Per-agent rows: the agent reporters' if any were defined, else the model's tables."""
        if self.agent_reporters:
            return super().get_agent_vars_dataframe()
        model = self._neural_model
        df = model.agents_dataframe()
        if not len(df):
            warnings.warn(
                "no per-agent rows were collected: build the model with agent_every=k (one "
                "row per agent every k steps) or give the DataCollector agent_reporters",
                UserWarning,
                stacklevel=2,
            )
            index = pd.MultiIndex.from_arrays([[], []], names=["Step", "AgentID"])
            return pd.DataFrame(index=index)
        df = df.rename(columns={"step": "Step"})
        df.insert(1, "AgentID", model.agent_ids()[df["agent"].to_numpy()])
        return df.set_index(["Step", "AgentID"])


def solaraviz_params(cls: type[NeuralModel], names: list[str] | None = None) -> dict[str, Any]:
    """``model_params`` for ``mesa.visualization.SolaraViz``: a control per parameter of ``cls``.

    Parameters
    ----------
    cls : NeuralModel subclass
        The scenario.
    names : list of str, optional
        Parameters to offer (default: the scenario's own, see
        :func:`simulator.registry.own_parameters`). Numbers with both bounds become sliders,
        choices a select, booleans a checkbox; others are passed as fixed values (their
        defaults). The seed is a text field (``rng``).

    Returns
    -------
    dict
        Parameter name -> a Mesa ``Slider`` / input dict / fixed value.
    """
    from mesa.visualization import Slider

    from simulator.registry import own_parameters

    specs = cls.param_specs()
    names = own_parameters(cls)[0] if names is None else names
    out: dict[str, Any] = {"rng": {"type": "InputText", "value": 0, "label": "seed (rng)"}}
    for name in names:
        spec = specs[name]
        if spec.kind in ("int", "float") and spec.low is not None and spec.high is not None:
            high = min(spec.high, max(4 * spec.default, 1) if spec.kind == "int" else spec.high)
            step = 1 if spec.kind == "int" else (high - spec.low) / 100
            value = spec.default
            out[name] = Slider(name, value, spec.low, high, step, dtype=type(value))
        elif spec.kind == "str" and spec.choices and spec.default in spec.choices:
            out[name] = {"type": "Select", "value": spec.default, "values": list(spec.choices)}
        elif spec.kind == "bool":
            out[name] = {"type": "Checkbox", "value": spec.default, "label": name}
        else:
            out[name] = spec.default
    return out


def own_init_args(cls: type, base_init: Any, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a scenario's own ``__init__`` (the Mesa habit
    ``def __init__(self, extra=1.0, **kw)``), with their defaults, by name: what the model's
    config and checkpoints record beside the declared parameters, so a rebuild (``--resume``,
    a sweep's rerun) passes them again. Empty when the class keeps ``base_init``, or when
    the call does not fit the signature (``__init__`` itself then raises). Not recorded: the
    declared parameters (in ``model.p``), ``rng``, ``scenario`` and ``fitness`` (a callable,
    outside the config by design), and catch-all ``*args`` / ``**kwargs``."""
    init = cls.__init__
    if init is base_init:
        return {}
    try:
        signature = inspect.signature(init)
        bound = signature.bind(None, *args, **kwargs)  # None stands for self
    except (TypeError, ValueError):
        return {}
    bound.apply_defaults()
    skip = {*cls.param_specs(), "rng", "scenario", "fitness"}
    kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    names = list(signature.parameters)[1:]  # after self
    return {
        name: bound.arguments[name]
        for name in names
        if name not in skip and signature.parameters[name].kind not in kinds
    }
