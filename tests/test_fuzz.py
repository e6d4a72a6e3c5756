"""Fuzzing: generated invalid inputs always get a clean error, never a crash or a traceback.

A clean error is a documented exception (:class:`simulator.ParameterError` and its subclasses,
or :class:`simulator.DivergenceError`) with a one-line message naming the parameter, or, on
the command line, exit code 2 with such a message and no output folder. Examples are drawn
deterministically (``derandomize``) so the suite is reproducible; about 3,150 cases in all.
``NEUROPOP_FUZZ_RANDOM=1`` draws new examples each run (exploratory fuzzing).
"""

from __future__ import annotations

import math
import numbers
import os
import string
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from models import REGISTRY
from simulator import DivergenceError, ParameterError, Population
from simulator.cli import main
from simulator.graph import build_graph
from simulator.sweep import load_spec

FUZZ = settings(
    derandomize=not os.environ.get("NEUROPOP_FUZZ_RANDOM"),  # set it to explore new examples
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# values that are wrong for almost any parameter (each kind gets more below)
JUNK = st.sampled_from(
    [
        None,
        "",
        "x",
        "1e999",
        [],
        {},
        (),
        [1, 2],
        {"a": 1},
        object(),
        1j,
        b"3",
        math.nan,
        math.inf,
        -math.inf,
        -1,
        -(10**30),
        10**30,
        10**400,  # too large for a float
        True,
        np.float16(1.0),
        np.array([1.0, 2.0]),
    ]
)


def clean(exc: BaseException, *names: str) -> None:
    """A documented exception, one line, naming one of ``names``."""
    assert isinstance(exc, ParameterError | DivergenceError), f"{type(exc).__name__}: {exc}"
    text = str(exc)
    assert "\n" not in text, text
    assert any(name in text for name in names), (names, text)


def attempt(fn, *names: str) -> bool:
    """Run ``fn``; True if it raised a clean error, False if it succeeded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn()
    except Exception as exc:
        clean(exc, *names)
        return True
    return False


# ---------------------------------------------------------------- Population
NOT_POSITIVE = JUNK.filter(  # junk for parameters with no upper bound: big numbers are fine
    lambda v: not (isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 <= v < math.inf)
)
POP_BAD = {
    "n_agents": st.one_of(
        JUNK, st.integers(max_value=0), st.floats(0.5, 10).filter(lambda v: not v.is_integer())
    ),
    "layers": st.one_of(
        JUNK.filter(lambda v: not isinstance(v, list)),
        st.lists(st.integers(-3, 0), min_size=2, max_size=4).map(tuple),
        st.lists(st.integers(1, 5), max_size=1).map(tuple),
    ),
    "activation": st.one_of(
        JUNK,
        st.text(string.ascii_lowercase, min_size=1).filter(
            lambda s: s not in ("identity", "step", "sigmoid", "tanh", "relu")
        ),
    ),
    "output": st.one_of(JUNK, st.sampled_from(["tanh", "relu", "Linear"])),
    "loss": st.one_of(JUNK, st.sampled_from(["hinge", "MSE", "l1"])),
    "optimizer": st.one_of(JUNK, st.sampled_from(["rmsprop", "Adam", "SGD"])),
    "lr": st.one_of(
        st.floats(max_value=-1e-9),
        st.sampled_from([math.nan, math.inf, "0.1", True, [0.1], np.ones((3, 1)), None]),
    ),
    "momentum": st.one_of(JUNK, st.floats(1.0, 1e9), st.floats(max_value=-1e-9)),
    "beta1": st.one_of(JUNK, st.floats(1.0, 1e9), st.floats(max_value=-1e-9)),
    "beta2": st.one_of(JUNK, st.floats(1.0, 1e9)),
    "eps": st.one_of(NOT_POSITIVE, st.floats(max_value=0.0)),
    "weight_decay": st.one_of(NOT_POSITIVE, st.floats(max_value=-1e-9)),
    "clip_norm": st.one_of(NOT_POSITIVE, st.floats(max_value=-1e-9)),
    "init": st.one_of(JUNK, st.sampled_from(["orthogonal", "zeros"])),
    "init_scale": st.one_of(NOT_POSITIVE, st.floats(max_value=-1e-9)),
    "dtype": st.one_of(JUNK, st.sampled_from(["float16", "int32", "banana", np.int64, "f2"])),
    "seed": st.sampled_from([-1, "seed", 1.5, [1.5], {"a": 1}]),
    "on_divergence": st.one_of(JUNK, st.sampled_from(["ignore", "Raise"])),
}


@settings(FUZZ, max_examples=500)
@given(st.data())
def test_population_refuses_invalid_constructor_arguments(data):
    name = data.draw(st.sampled_from(sorted(POP_BAD)))
    value = data.draw(POP_BAD[name])
    kwargs = {"n_agents": 3, "layers": (2, 3, 2), name: value}
    accepted = not attempt(lambda: Population(**kwargs), name, "layers", "activation", "output")
    assert not accepted, f"Population({name}={value!r}) was accepted"


ARRAYS = hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64, np.int64, np.bool_, np.complex64, np.uint8]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=40),
    elements=None,
)


@settings(FUZZ, max_examples=500)
@given(st.data())
def test_assigned_attributes_are_checked_and_never_reach_a_kernel_unchecked(data):
    pop = Population(
        3, (2, 3, 2), optimizer=data.draw(st.sampled_from(["sgd", "momentum", "adam"]))
    )
    name = data.draw(
        st.sampled_from(
            [
                "params",
                "lr",
                "m",
                "v",
                "t",
                "beta1",
                "eps",
                "momentum",
                "clip_norm",
                "weight_decay",
                "step_count",
                "optimizer",
                "dtype",
                "layers",
            ]
        )
    )
    value = data.draw(
        st.one_of(
            ARRAYS,
            JUNK,
            st.floats(),
            hnp.arrays(
                np.float64,
                (3, pop.n_params),
                elements=st.floats(allow_nan=True, allow_infinity=True),
            ),
        )
    )
    if name in ("m", "v", "t"):
        fn = lambda: pop.set_optimizer_state(**{name: value})  # noqa: E731
    else:
        fn = lambda: setattr(pop, name, value)  # noqa: E731
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn()
    except AttributeError as exc:  # fixed at construction: the message says so
        assert (
            name in ("optimizer", "dtype", "layers") and "fixed" in str(exc)
        ) or "property" in str(exc)
        return
    except Exception as exc:
        clean(exc, name, "optimizer_state")
        return
    X = np.random.default_rng(0).standard_normal((3, 4, 2))
    attempt(lambda: pop.train_step(X, X), "X", "Y", "diverged")  # accepted: training is safe
    assert np.all(np.isfinite(pop.params))


@settings(FUZZ, max_examples=400)
@given(
    X=st.one_of(ARRAYS, JUNK),
    Y=st.one_of(ARRAYS, JUNK),
    loss=st.sampled_from([("linear", "mse"), ("softmax", "cross_entropy"), ("sigmoid", "bce")]),
    method=st.sampled_from(["train_step", "loss", "gradients", "input_gradients", "predict"]),
)
def test_data_of_any_shape_or_type_gets_a_result_or_a_clean_error(X, Y, loss, method):
    pop = Population(3, (2, 3, 2), output=loss[0], loss=loss[1])
    fn = getattr(pop, method)
    call = (lambda: fn(X)) if method == "predict" else (lambda: fn(X, Y))
    attempt(call, "X", "Y", "diverged")


# ---------------------------------------------------------------- scenario parameters
def _in_range(v, spec) -> bool:
    """Whether v is a real number (Python's or NumPy's, not a bool) in the spec's range."""
    if not isinstance(v, int | float | np.integer | np.floating) or isinstance(v, bool | np.bool_):
        return False
    try:
        v = float(v)
    except OverflowError:  # 10**400
        return False
    return (
        math.isfinite(v)
        and (spec.low is None or v >= spec.low)
        and (spec.high is None or v <= spec.high)
    )


def bad_value(spec) -> st.SearchStrategy:
    """Values a declared parameter must refuse."""
    kind = spec.kind
    if kind in ("int", "float"):
        out = [JUNK.filter(lambda v: not _in_range(v, spec))]
        if spec.low is not None:
            out.append(st.floats(spec.low - 1e6, spec.low, exclude_max=True))
        if spec.high is not None:
            out.append(st.floats(spec.high, spec.high + 1e6, exclude_min=True))
        if kind == "int":
            out.append(st.floats(0.1, 0.9).map(lambda f: (spec.low or 0) + f))
        return st.one_of(*out)
    if kind == "bool":
        return st.one_of(st.integers(), st.text(max_size=3), st.none())
    if kind == "ints":
        return st.one_of(
            st.sampled_from([0, -1, (0,), (16, -2), "a", 1.5, (1.5,), [True], {"a": 1}, None])
        )
    if kind == "dict":
        return st.one_of(
            st.sampled_from([1, "k=4", [1, 2], 3.5]),
            st.dictionaries(st.integers(), st.integers(), min_size=1, max_size=2),
            st.dictionaries(
                st.text("xyz_", min_size=1, max_size=5), st.integers(), min_size=1, max_size=2
            ),
        )
    if spec.choices and not spec.open_choices:
        return st.one_of(
            JUNK,
            st.text(string.ascii_letters + "_", min_size=1, max_size=12).filter(
                lambda s: s not in spec.choices
            ),
        )
    return st.one_of(
        st.sampled_from([None, 3, 1.5, [], {}]),
        st.text(string.ascii_letters + "/._", min_size=1, max_size=12).filter(
            lambda s: s not in (spec.choices or ())
        ),
    )


@settings(FUZZ, max_examples=300)
@given(st.data())
def test_every_scenario_refuses_invalid_parameters_naming_them(data):
    name = data.draw(st.sampled_from(sorted(REGISTRY)))
    cls = REGISTRY[name]
    specs = cls.param_specs()
    param = data.draw(st.sampled_from(sorted(specs)))
    value = data.draw(bad_value(specs[param]))
    kwargs = {"n_agents": 6, "measures": "fast", param: value}
    ok = attempt(lambda: cls(rng=0, **kwargs), param, "graph", "task", "n_agents")
    assert ok, f"{name}({param}={value!r}) was accepted"


@settings(FUZZ, max_examples=100)
@given(
    st.one_of(
        JUNK,
        st.integers(max_value=-1),
        st.text(max_size=5).filter(lambda s: not s.strip().isdigit()),
    )
)
def test_an_invalid_seed_is_refused(rng):
    if rng is None or (isinstance(rng, int) and not isinstance(rng, bool) and rng >= 0):
        return  # None draws a fresh seed; any int >= 0 is a seed (documented)
    assert attempt(lambda: REGISTRY["gossip_learning"](rng=rng, n_agents=6), "rng")


# ---------------------------------------------------------------- the command line
@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_the_command_line_refuses_invalid_input_cleanly(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "out"
    name = data.draw(st.sampled_from(sorted(REGISTRY)))
    specs = REGISTRY[name].param_specs()
    choice = data.draw(st.integers(0, 3))
    if choice == 0:  # an invalid parameter value, written as text
        param = data.draw(st.sampled_from(sorted(specs)))
        value = data.draw(
            bad_value(specs[param]).filter(
                lambda v: (
                    not isinstance(v, object) or isinstance(v, int | float | str | list | dict)
                )
            )
        )
        args = ["--set", f"{param}={value!r}" if not isinstance(value, str) else f"{param}={value}"]
        names = [param, "--set", "graph", "task", "n_agents"]
    elif choice == 1:  # an unknown parameter name
        param = data.draw(
            st.text(string.ascii_lowercase + "_", min_size=1, max_size=10).filter(
                lambda s: s not in specs and s not in ("rng", "seed")
            )
        )
        args, names = ["--set", f"{param}=1"], [param]
    elif choice == 2:  # a malformed --set
        args, names = (
            [
                "--set",
                data.draw(st.text(string.printable, max_size=8).filter(lambda s: "=" not in s)),
            ],
            ["--set"],
        )
    else:  # an invalid option value
        opt = data.draw(
            st.sampled_from(
                [
                    "--steps",
                    "--seed",
                    "--agents-every",
                    "--format",
                    "--checkpoint-every",
                    "--divergence-factor",
                ]
            )
        )
        value = data.draw(st.sampled_from(["-1", "x", "1.5", "", "nan", "-inf", "xml"]))
        if opt == "--format" and value in ("csv", "parquet"):
            return
        if opt == "--divergence-factor" and value in ("1.5",):
            return
        args, names = [opt, value], [opt]
    if choice == 0 and args[1].split("=", 1)[1].strip() in ("", "None", "none", "null"):
        names.append("--set")
    res = CliRunner().invoke(
        main, ["run", name, "--steps", "1", "--out", str(out), "--quiet", *args]
    )
    assert res.exit_code == 2, (args, res.exit_code, res.output, res.exception)
    assert "Traceback" not in res.output
    error = [line for line in res.output.splitlines() if line.startswith("Error")]
    assert len(error) == 1 and any(n in error[0] for n in names), (args, res.output)
    assert not out.exists() and not (out.parent / ".out.partial").exists()


# ---------------------------------------------------------------- sweep specs
KEYS = [
    "model",
    "steps",
    "seeds",
    "measures",
    "record",
    "fixed",
    "vary",
    "combinations",
    "name",
    "seed",
    "params",
    "stepz",
]
SPEC_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 10**12),
        st.floats(allow_nan=True),
        st.text(string.ascii_letters + "_", max_size=8),
        st.sampled_from(["gossip_learning", "lr", "n_agents", "every", "end", "all"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(
                [
                    "lr",
                    "n_agents",
                    "graph",
                    "count",
                    "base",
                    "start",
                    "stop",
                    "num",
                    "step",
                    "every",
                    "hidden",
                    "x",
                ]
            ),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=8,
)


@settings(FUZZ, max_examples=300)
@given(st.dictionaries(st.sampled_from(KEYS), SPEC_VALUES, max_size=6))
def test_sweep_specs_as_data_get_a_clean_error_naming_the_problem(raw):
    raw.setdefault("model", "gossip_learning")
    try:
        spec = load_spec(raw)
    except Exception as exc:
        clean(exc, "sweep spec")
        return
    assert len(spec.runs()) <= 100_000  # accepted: a bounded, checked sweep


@settings(FUZZ, max_examples=200)
@given(st.text(string.printable, max_size=120))
def test_sweep_specs_as_text_get_a_clean_error(text):
    attempt(lambda: load_spec(text + "\n"), "sweep spec")


# ---------------------------------------------------------------- graph files
LINES = st.lists(
    st.one_of(
        st.tuples(st.integers(-2, 12), st.integers(-2, 12)).map(lambda t: f"{t[0]} {t[1]}"),
        st.text(
            string.printable.replace("\r", "").replace("\x0b", "").replace("\x0c", ""), max_size=20
        ),
        st.sampled_from(["# comment", "a,b", "1 2 {'weight': x}", "1 2 {", "1\t2\t3", "", "1"]),
    ),
    max_size=12,
).map("\n".join)


@settings(FUZZ, max_examples=300)
@given(
    LINES,
    st.sampled_from([".edgelist", ".csv", ".txt", ".tsv", ".el", ".graphml"]),
    st.sampled_from([None, 3, 10]),
)
def test_graph_files_load_or_get_a_clean_error(tmp_path_factory, content, suffix, n):
    path = tmp_path_factory.mktemp("g") / f"graph{suffix}"
    path.write_text(content)
    attempt(lambda: build_graph(path, n), "graph", str(path.name), "line", "n_agents")


@pytest.mark.parametrize(
    "content",
    [
        '<graphml><graph edgedefault="directed"><node id="a"/><node id="b"/>'
        '<edge source="a" target="b"/></graph></graphml>',
        "<graphml><graph><node id='a'/></graph>",
        "\x00\x01\x02",
        "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'>]><graphml>&a;</graphml>",
    ],
)
def test_odd_graphml_files_get_a_clean_error(tmp_path, content):
    path = tmp_path / "g.graphml"
    path.write_text(content)
    assert attempt(lambda: build_graph(path), "graph", "g.graphml")


# ---------------------------------------------------------------- plot and models
JOURNAL = st.one_of(
    st.text(string.printable, max_size=60),
    st.dictionaries(
        st.sampled_from(["spec", "spec_hash", "code_revision", "swept", "history", "runs"]),
        st.one_of(
            st.none(),
            st.integers(),
            st.text(max_size=5),
            st.lists(st.text(max_size=3)),
            st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        ),
        max_size=6,
    ).map(lambda d: __import__("json").dumps(d)),
)
RUNS = st.lists(
    st.lists(
        st.sampled_from(["run_id", "status", "error", "ok", "x", "1", "", "lr", '"']), max_size=5
    ).map(",".join),
    max_size=4,
).map("\n".join)


@settings(FUZZ, max_examples=150)
@given(manifest=JOURNAL, runs=RUNS)
def test_plot_of_a_damaged_sweep_folder_is_a_clean_error(tmp_path_factory, manifest, runs):
    folder = tmp_path_factory.mktemp("plot")
    (folder / "manifest.json").write_text(manifest)
    (folder / "runs.csv").write_text(runs)
    res = CliRunner().invoke(main, ["plot", str(folder), "--out", str(folder / "figs")])
    assert res.exit_code in (0, 2), (manifest, runs, res.output, res.exception)
    if res.exit_code == 2:
        assert "Traceback" not in res.output
        assert "manifest.json" in res.output or "runs.csv" in res.output, res.output


@settings(FUZZ, max_examples=100)
@given(
    st.text(string.printable, max_size=20).filter(
        lambda s: s not in REGISTRY and not s.startswith("--h")
    )
)
def test_models_with_an_unknown_name_is_a_clean_error(name):
    res = CliRunner().invoke(main, ["models", name])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    if name.startswith("-") and name != "-":
        expected = ("No such option",)
    else:  # a name, or MODULE:CLASS that does not import
        expected = ("unknown scenario", "model=")
    assert any(e in res.output for e in expected) or "--help" in name, res.output


def _metric_arguments():
    """Valid arguments for every public function of simulator.metrics, and junk for any of them."""
    import networkx as nx

    rng = np.random.default_rng(0)
    pop = Population(6, layers=(2, 3, 2), seed=0)
    pop1 = Population(6, layers=(2, 2), seed=0)
    X = rng.standard_normal((7, 2)).astype(np.float32)
    preds = rng.random((6, 7, 2)).astype(np.float32)
    correct = rng.random((6, 7)) > 0.4
    G = nx.path_graph(6)
    valid = {
        "agreement_of_decisions": dict(dec=rng.integers(0, 2, (6, 7)), n_classes=2),
        "align_params": dict(pop=pop, ref=0, other=1),
        "aligned_consensus_distance": dict(
            pop=pop, ref=None, max_agents=None, rng=None, refine=1, agents=None, summary=None
        ),
        "aligned_distance": dict(pop=pop, i=0, j=1),
        "cka_baseline": dict(
            pop_kwargs={"layers": (2, 3, 2)}, probe_X=X, n_agents=3, seed=1, layer=1
        ),
        "cluster_nmi": dict(
            labels=np.array([0, 0, 1, 1, 2, 2]), communities=np.array([0, 0, 0, 1, 1, 1])
        ),
        "consensus_distance": dict(params=rng.random((6, 5))),
        "consensus_time": dict(series=np.array([3.0, 2, 1, 0.1]), tol=0.5),
        "disagreement": dict(correct=correct),
        "diversity": dict(correct=correct, population=None),
        "diversity_of_right": dict(right=np.array([1, 2, 3]), n_agents=4, population=None),
        "ensemble_accuracy": dict(probs=preds, labels=rng.integers(0, 2, 7)),
        "ensemble_decomposition": dict(preds=preds, y=rng.random((7, 2)), weights=None),
        "ensemble_gain": dict(preds=preds, y=rng.random((7, 2))),
        "failure_groups": dict(n_agents=6, k=None, max_groups=20, rng=None),
        "function_clusters": dict(preds=preds, eps=0.3, max_agents=None, rng=None),
        "function_dispersion": dict(preds=preds),
        "function_summary": dict(preds=preds),
        "grid_clusters": dict(Z=rng.random((6, 2)), eps=0.3),
        "homogenization_of_failures": dict(
            fails=(~correct).astype(np.uint8), groups=np.array([[0, 1, 2], [3, 4, 5]])
        ),
        "kappa": dict(correct=correct),
        "kw_variance": dict(correct=correct, population=None),
        "linear_cka": dict(H1=rng.random((7, 3)), H2=rng.random((7, 4))),
        "linear_embedding": dict(pop=pop1, probe_X=X, max_dim=3),
        "mean_cka": dict(hidden=rng.random((6, 7, 3)), max_pairs=10, rng=None),
        "mean_pairwise_cosine": dict(params=rng.random((6, 5)), max_pairs=10, rng=None),
        "measure_panel": dict(
            n_agents=100, exact_up_to=10, size=20, seed=1, cka_agents=5, align_agents=5
        ),
        "modularity": dict(csr_or_graph=G, labels=np.array([0, 0, 0, 1, 1, 1])),
        "outcome_homogenization": dict(correct=correct, k=None, max_groups=20, rng=None),
        "polarization": dict(preds=preds, labels=None, rng=None, max_pairs=20),
        "prediction_agreement": dict(preds=preds),
        "probe_pass": dict(
            pop=pop,
            X=X,
            rows=None,
            Y=None,
            truth=None,
            labels=None,
            keep_preds=True,
            hidden_pos=None,
        ),
        "sampled_modularity": dict(labels_u=np.array([0, 1, 1]), labels_v=np.array([0, 1, 0])),
        "weight_summary": dict(params=rng.random((6, 5))),
    }
    big = np.int64(2**62)
    junk = [
        None,
        "x",
        3,
        -1,
        0,
        2.5,
        float("nan"),
        float("inf"),
        2**62,
        True,
        [],
        [[1]],
        (1, 2),
        {"a": 1},
        np.array([]),
        np.zeros((0, 3)),
        np.zeros((6, 0)),
        np.zeros((0, 7, 2)),
        np.array(5.0),
        np.array([1, -1, 7]),
        np.array([big, 0, 1]),
        np.full((6, 7, 2), np.nan, np.float32),
        np.full((6, 7, 2), np.inf),
        np.ones((6, 7, 2), np.float16),
        np.ones((6, 7, 2), complex),
        np.ones((6, 7), dtype=object),
        rng.integers(-5, 5, (6, 7)),
        rng.integers(0, 99, (6, 7)),
        rng.random((6, 7)) > 0.5,
        rng.random((6,)),
        rng.integers(-3, 9, 6),
        rng.random((6, 7, 2, 2)),
        rng.integers(0, 2, (3, 7)),
        np.full((6, 5), np.nan),
        rng.random((7, 2)) * 1e300,
        rng.random((2, 7, 2)),
        np.array([[0, 1, 2], [3, 4, 9]]),
        np.array([[0, 1, -7]]),
        np.array(["a", "b"]),
        np.arange(6)[::-1],
        Population(3, layers=(2, 3, 2), seed=1),
        nx.complete_graph(3),
        nx.DiGraph([(0, 1)]),
        rng.random((6, 7, 2)).astype(np.float32)[:, ::2],
    ]
    return valid, junk


def test_every_public_metric_refuses_junk_in_any_argument_cleanly():
    """Each function of simulator.metrics, with one argument at a time replaced by junk (wrong
    types, shapes, dtypes, NaN, inf, huge or negative values and indices: 46 kinds), returns
    or raises a one-line ParameterError naming the problem: never a crash, a Numba or NumPy
    traceback, or an attribute error (4,170 calls)."""
    from simulator import metrics

    valid, junk = _metric_arguments()
    assert set(valid) == {n for n in metrics.__all__ if n[0].islower()}
    for name, kwargs in valid.items():
        getattr(metrics, name)(**kwargs)  # the valid call works
        for param in kwargs:
            for value in junk:
                try:
                    getattr(metrics, name)(**{**kwargs, param: value})
                except ParameterError as exc:
                    assert "\n" not in str(exc), (name, param, str(exc))
