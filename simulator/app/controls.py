"""Solara controls: one per declared model parameter, plus the run controls.

Controls are generated from a scenario's ``param_specs()``:

* ``bool`` -> a checkbox;
* ``str`` with choices -> a select;
* ``int`` / ``float`` with both bounds and a range a slider can show (ints: at most 200 values,
  floats: within [0, 1]-sized ranges) -> a slider that commits when released;
* anything else (wide numeric ranges, ``ints`` tuples, ``dict`` generator parameters) -> a
  text field parsed with :func:`simulator.params.parse_value` when the user presses Enter or
  leaves it. The field's hint says what is allowed.

The scenario's own parameters (those it sets or adds, :func:`simulator.registry.own_parameters`)
come first; the others are under "advanced". Every change rebuilds the model through
:meth:`Session.set_param`; a bad value is marked on its own field (the previous model stays and
every other field keeps working). Sliders show their value beside their label.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reacton.ipyvuetify as rv
import solara

from simulator.app.session import Session, format_value
from simulator.params import Param
from simulator.registry import own_parameters

MAX_INT_SLIDER = 200


def control_kind(spec: Param) -> str:
    """Which control a parameter gets: ``checkbox``, ``select``, ``slider`` or ``text``."""
    if spec.kind == "bool":
        return "checkbox"
    if spec.kind == "str" and spec.choices:
        return "select"
    if spec.kind in ("int", "float") and spec.low is not None and spec.high is not None:
        span = spec.high - spec.low
        if (spec.kind == "int" and span <= MAX_INT_SLIDER) or (spec.kind == "float" and span <= 1):
            return "slider"
    return "text"


@solara.component
def CommitSlider(
    label: str, value: float, low: float, high: float, step: float, on_commit: Callable
) -> Any:
    """A slider that shows its value while dragged and calls ``on_commit`` once, on release."""
    local, set_local = solara.use_state(value)
    solara.use_effect(lambda: set_local(value), [value])
    shown = f"{local:g}" if isinstance(local, int | float) else str(local)
    with solara.Row(gap="6px", style={"align-items": "center"}, classes=["neuropop-slider-row"]):
        el = rv.Slider(
            v_model=local,
            on_v_model=set_local,
            label=label,
            min=low,
            max=high,
            step=step,
            thumb_label=True,
            hide_details=True,
            class_="neuropop-slider",
        )
        solara.Text(shown, classes=["neuropop-slider-value"], style={"min-width": "3em"})
    rv.use_event(el, "change", lambda *args: on_commit(args[-1]))


@solara.component
def ParamControl(
    name: str,
    spec: Param,
    value: Any,
    on_change: Callable[[str, Any], None],
    error: str = "",
) -> Any:
    """The control of parameter ``name`` (declared by ``spec``) showing ``value``; ``error``
    (the field's own error) is shown under it."""
    kind = control_kind(spec)
    hint = (spec.help + "; " if spec.help else "") + spec.allowed()

    def set_value(v: Any) -> None:
        on_change(name, v)

    if kind == "text":
        text = value if isinstance(value, str) else format_value(value)
        return solara.InputText(
            label=name,
            value=text,
            on_value=set_value,
            message=hint,
            error=error or False,
            classes=["neuropop-field-error"] if error else [],
        )
    with solara.Column(gap="0px"):
        if kind == "checkbox":
            solara.Checkbox(label=name, value=bool(value), on_value=set_value)
        elif kind == "select":
            values = list(spec.choices or ())
            if value not in values:
                values.append(value)
            solara.Select(label=name, values=values, value=value, on_value=set_value)
        else:
            integer = spec.kind == "int"
            CommitSlider(
                label=name,
                value=value,
                low=spec.low,
                high=spec.high,
                step=1 if integer else (spec.high - spec.low) / 100,
                on_commit=lambda v: set_value(int(v) if integer else float(v)),
            )
        if error:
            solara.Text(error, classes=["neuropop-field-error"], style={"color": "#b00020"})


@solara.component
def ParamControls(
    session: Session,
    on_change: Callable[[str, Any], None],
    scenario: str,
    raw: dict[str, Any],
    errors: dict[str, str] | None = None,
) -> Any:
    """One control per parameter of ``scenario`` (the session's): its own parameters first,
    the others under "advanced" (open when one of them was changed or is in error).

    ``scenario``, ``raw`` (the user's values) and ``errors`` (by field) are props so the
    controls re-render when they change.
    """
    cls = session.registry[scenario]
    specs = cls.param_specs()
    own, rest = own_parameters(cls)
    errors = errors or {}

    def control(name: str) -> None:
        spec = specs[name]
        value = raw.get(name, spec.default)
        ParamControl(name, spec, value, on_change, errors.get(name, "")).key(f"{scenario}:{name}")

    with solara.Column(gap="4px", classes=["neuropop-params"]):
        for name in own:
            control(name)
        touched = any(name in raw or name in errors for name in rest)
        with solara.Details(f"advanced ({len(rest)} more)", expand=touched):
            with solara.Column(gap="4px", classes=["neuropop-advanced"]):
                for name in rest:
                    control(name)


@solara.component
def RunControls(
    playing: bool,
    per_frame: solara.Reactive[int],
    on_step: Callable[[], None],
    on_play: Callable[[], None],
    on_reset: Callable[[], None],
    can_step: bool = True,
) -> Any:
    """Step, Play/Pause, Reset and the speed (steps per frame: the page redraws every k steps)."""
    with solara.Row(gap="6px"):
        solara.Button(
            "Step",
            on_click=on_step,
            disabled=playing or not can_step,
            color="primary",
            outlined=True,
        )
        solara.Button(
            "Pause" if playing else "Play", on_click=on_play, disabled=not can_step, color="primary"
        )
        solara.Button("Reset", on_click=on_reset, outlined=True)
    solara.SliderInt("steps per frame", value=per_frame, min=1, max=50)
