"""A population of small MLPs stored as one array and trained by one Numba call per step.

Definitions used throughout (``B`` samples per agent, ``K`` outputs):

* ``"mse"``: mean over the batch and the outputs of ``(y_hat - y)**2``;
* ``"bce"``: binary cross-entropy of sigmoid outputs, mean over the batch and the outputs;
* ``"cross_entropy"``: softmax cross-entropy ``-sum_k y_k log softmax(z)_k``, mean over the
  batch. Targets may be one-hot, soft (probabilities) or integer labels.

The ``step`` activation (Heaviside, ``z > 0``) trains with the perceptron rule when it is the
output of a single-layer network (``output="step"``, ``loss="mse"``: the update is
``w += lr * mean_b (y - y_hat) x / K``) and, in hidden layers, with the straight-through
estimator ``d step(z)/dz = 1`` for ``|z| <= 1``, else 0.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from simulator import config as C
from simulator.attributes import Checked, Fixed, keep, number, readonly
from simulator.kernels import losses as KL
from simulator.kernels import measure_probe as KP
from simulator.kernels import mlp as K
from simulator.kernels.sized import blocks, sized
from simulator.layout import AgentNetwork, ParamLayout

_STATUS_TEXT = {K.BAD_INPUT: "X", K.BAD_TARGET: "Y"}
EXPLOSION_FACTOR = 1e6  # a training loss above this x the first step's median: a warning


class Population:
    """``n_agents`` MLPs with identical architecture, one row each of ``params``.

    Parameters
    ----------
    n_agents : int
        Number of networks P >= 1.
    layers : tuple of int
        Widths ``(d_in, hidden..., d_out)``.
    activation : str or sequence of str
        Hidden activation, one of ``identity, step, sigmoid, tanh, relu``; one for all hidden
        layers or one per hidden layer.
    output : str
        ``linear``, ``sigmoid``, ``softmax`` or ``step``.
    loss : str
        ``mse`` (any output), ``bce`` (sigmoid output) or ``cross_entropy`` (softmax output).
    optimizer : str
        ``sgd``, ``momentum`` or ``adam`` (see :mod:`simulator.kernels.optim`).
    lr : float or array of shape (n_agents,)
        Learning rate(s) >= 0; 0 freezes an agent.
    momentum, beta1, beta2, eps : float
        Optimizer constants.
    weight_decay : float
        L2 coefficient >= 0 added to the gradient.
    clip_norm : float
        Clip each agent's gradient to this Euclidean norm; 0 disables.
    init : str
        ``xavier_uniform``, ``xavier_normal``, ``he_normal``, ``he_uniform`` or ``uniform``
        (``U(-init_scale, init_scale)``); biases start at 0.
    init_scale : float
        Multiplies the initial weights (the bound itself for ``uniform``).
    dtype : str
        ``float32`` (default) or ``float64``.
    seed : int or numpy.random.Generator
        Seeds the initialization; the same seed gives the same population.
    on_divergence : str
        ``raise`` (:class:`DivergenceError`) or ``warn`` when a loss or gradient is not finite.
    bias : bool
        True (default): every layer computes ``W^T a + b``. False: no layer has a bias, each
        computes ``W^T a``; the rows hold only the weights (``n_params`` shrinks by the sum of
        the layer widths) and every method (training, gradients, predictions, ``agent(i)``
        views, :meth:`from_params`) follows that layout. A linear population without biases
        (``layers=(d_in, d_out)``, ``output="linear"``) is plain least squares.

    Notes
    -----
    Every public attribute a kernel reads is checked when it is assigned, so nothing a user
    assigns reaches a kernel unchecked: ``params`` (same shape, finite; values are copied into
    the population's own C-contiguous array), ``lr`` (a scalar or one per agent, >= 0),
    ``momentum``, ``beta1``, ``beta2``, ``eps``, ``weight_decay``, ``clip_norm``,
    ``on_divergence``, ``step_count`` and the optimizer state (:meth:`set_optimizer_state`).
    ``layers``, ``optimizer``, ``dtype``, ``activation``, ``output``, ``loss_name``, ``init``
    and ``init_scale`` are fixed at construction (AttributeError on assignment). ``lr`` and
    :attr:`optimizer_state` are read-only views: assign them, never write into them.
    """

    momentum = Checked(number(0.0, 1.0, high_open=True), "Momentum coefficient in [0, 1).")
    beta1 = Checked(number(0.0, 1.0, high_open=True), "Adam's first-moment decay in [0, 1).")
    beta2 = Checked(number(0.0, 1.0, high_open=True), "Adam's second-moment decay in [0, 1).")
    eps = Checked(number(0.0, low_open=True), "Adam's epsilon > 0.")
    weight_decay = Checked(number(0.0), "L2 coefficient >= 0.")
    clip_norm = Checked(number(0.0), "Gradient norm clip >= 0 (0: off).")
    on_divergence = Checked(
        lambda n, v: C.check_choice(n, v, ("raise", "warn")), "'raise' or 'warn'."
    )
    step_count = Checked(lambda n, v: C.check_int(n, v, low=0), "Training steps taken.")
    layout = Fixed(keep, "The ParamLayout (where each layer sits in a row).")
    optimizer = Fixed(lambda n, v: C.check_choice(n, v, C.OPTIMIZERS), "sgd, momentum, adam.")
    dtype = Fixed(lambda n, v: C.check_dtype(v), "float32 or float64.")
    activation = Fixed(keep, "Hidden activation name(s).")
    output = Fixed(keep, "Output function name.")
    loss_name = Fixed(keep, "Loss name.")
    init = Fixed(lambda n, v: C.check_choice(n, v, C.INITS), "Initialization scheme.")
    init_scale = Fixed(number(0.0), "Initial weight scale.")

    def __init__(
        self,
        n_agents: int = 100,
        layers: tuple[int, ...] = (8, 16, 1),
        activation: Any = "tanh",
        output: str = "linear",
        loss: str = "mse",
        optimizer: str = "sgd",
        lr: Any = 0.05,
        momentum: float = 0.9,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        clip_norm: float = 0.0,
        init: str = "xavier_uniform",
        init_scale: float = 1.0,
        dtype: str = "float32",
        seed: Any = 0,
        on_divergence: str = "raise",
        bias: bool = True,
        _params: np.ndarray | None = None,
    ):
        n_agents = C.check_int("n_agents", n_agents, low=1)
        self.layout = ParamLayout(C.check_layers(layers), _check_bias(bias))
        self._acts = C.activation_codes(activation, output, self.layout.n_layers)
        C.check_loss_output(loss, output)
        if output == "softmax" and self.layout.layers[-1] < 2:  # softmax of one output is 1
            raise C.fail("output", output, "'sigmoid' for one output (softmax needs >= 2)")
        self.activation, self.output, self.loss_name = activation, output, loss
        self.optimizer = C.check_choice("optimizer", optimizer, C.OPTIMIZERS)
        self.dtype = C.check_dtype(dtype)
        C.check_memory(n_agents, self.layout.n_params, self.dtype, optimizer)
        self.momentum = C.check_number("momentum", momentum, 0.0, 1.0, high_open=True)
        self.beta1 = C.check_number("beta1", beta1, 0.0, 1.0, high_open=True)
        self.beta2 = C.check_number("beta2", beta2, 0.0, 1.0, high_open=True)
        self.eps = C.check_number("eps", eps, 0.0, low_open=True)
        self.weight_decay = C.check_number("weight_decay", weight_decay, 0.0)
        self.clip_norm = C.check_number("clip_norm", clip_norm, 0.0)
        self.on_divergence = C.check_choice("on_divergence", on_divergence, ("raise", "warn"))
        self._lr = C.check_lr(lr, n_agents, self.dtype)
        self.init = C.check_choice("init", init, C.INITS)
        self.init_scale = C.check_number("init_scale", init_scale, 0.0)
        if _params is None:
            try:
                rng = np.random.default_rng(seed)
            except (TypeError, ValueError) as exc:
                raise C.fail("seed", seed, "an int >= 0 or a numpy Generator") from exc
            _params = self._initial_params(n_agents, rng)
            if not np.isfinite(_params).all():
                most = float(np.finfo(self.dtype).max)
                raise C.fail(
                    "init_scale", init_scale, f"small enough that the weights are finite "
                    f"in {self.dtype} (|w| <= {most:.3g})"
                )  # fmt: skip
        self._params = _params
        self.step_count = 0
        self._loss_reference: float | None = None  # median loss of the first training step
        self._explosion_warned = False
        self._net = K.NetArrays(*self.layout.arrays, self._acts, C.LOSSES[loss])
        self.reset_optimizer()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_params(cls, params: np.ndarray, layers: tuple[int, ...], **kwargs: Any) -> Population:
        """Wrap existing weights without copying them.

        ``params`` must be a C-contiguous, writable float32 or float64 array of shape
        (n_agents, n_params) in the canonical layout (of ``layers`` and ``bias``); the
        population's dtype is its dtype. Other keyword arguments are those of
        :class:`Population` (``n_agents`` and ``seed`` are taken from ``params``).
        """
        layout = ParamLayout(C.check_layers(layers), _check_bias(kwargs.get("bias", True)))
        C.check_params(params, layout.n_params, layout.layers, kwargs.pop("dtype", None))
        kwargs.pop("seed", None)
        kwargs.pop("n_agents", None)
        return cls(
            n_agents=params.shape[0],
            layers=layout.layers,
            dtype=str(params.dtype),
            _params=params,
            **kwargs,
        )

    def _initial_params(self, n_agents: int, rng: np.random.Generator) -> np.ndarray:
        params = np.zeros((n_agents, self.layout.n_params), dtype=self.dtype)
        for l, (w, _) in enumerate(self.layout.unravel(params)):
            fan_in, fan_out = self.layout.layers[l], self.layout.layers[l + 1]
            shape = (n_agents, fan_in, fan_out)
            if self.init == "xavier_uniform":
                draw = rng.uniform(-1, 1, shape) * np.sqrt(6.0 / (fan_in + fan_out))
            elif self.init == "xavier_normal":
                draw = rng.standard_normal(shape) * np.sqrt(2.0 / (fan_in + fan_out))
            elif self.init == "he_normal":
                draw = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
            elif self.init == "he_uniform":
                draw = rng.uniform(-1, 1, shape) * np.sqrt(6.0 / fan_in)
            else:
                draw = rng.uniform(-1, 1, shape)
            with np.errstate(over="ignore"):  # an init_scale too large: refused by the caller
                w[...] = draw * self.init_scale
        return params

    def reset_optimizer(self, agents: Any = None) -> None:
        """Zero the optimizer state of ``agents`` (default: all): momentum, Adam moments and
        the per-agent update count that Adam's bias correction uses (so Adam restarts)."""
        if agents is None:
            full, none = self.params.shape, (1, 1)
            self._m = np.zeros(full if self.optimizer != "sgd" else none, dtype=self.dtype)
            self._v = np.zeros(full if self.optimizer == "adam" else none, dtype=self.dtype)
            self._t = np.zeros(self.n_agents, dtype=np.int64)
            return
        agents = C.check_agents("agents", agents, self.n_agents)
        self._t[agents] = 0
        if self.optimizer != "sgd":
            self._m[agents] = 0
        if self.optimizer == "adam":
            self._v[agents] = 0

    def copy_agents(self, src: Any, dst: Any) -> None:
        """Copy the networks (and optimizer state) of agents ``src`` onto agents ``dst``.

        ``src`` and ``dst`` are integer indices of the same length (or ``src`` a single agent).
        """
        src, dst = (
            C.check_agents("src", src, self.n_agents),
            C.check_agents("dst", dst, self.n_agents),
        )
        if src.size != 1 and src.shape != dst.shape:
            raise C.fail("src", src, f"one agent, or as many agents as dst ({dst.size})")
        self.params[dst] = self.params[src]
        self._t[dst] = self._t[src]
        if self.optimizer != "sgd":
            self._m[dst] = self._m[src]
        if self.optimizer == "adam":
            self._v[dst] = self._v[src]

    # ------------------------------------------------------------------ views
    @property
    def n_agents(self) -> int:
        """Number of agents P."""
        return self.params.shape[0]

    @property
    def n_params(self) -> int:
        """Parameters per agent."""
        return self.layout.n_params

    @property
    def layers(self) -> tuple[int, ...]:
        """Widths (d_in, ..., d_out)."""
        return self.layout.layers

    @property
    def bias(self) -> bool:
        """Whether the layers have biases (see the ``bias`` parameter)."""
        return self.layout.bias

    def agent(self, i: int) -> AgentNetwork:
        """Agent ``i``'s network, a view of ``params[i]``."""
        C.check_int("i", i, 0, self.n_agents - 1)
        return AgentNetwork(self, int(i))

    # ------------------------------------------------------------------ checked attributes
    @property
    def params(self) -> np.ndarray:
        """Weights, shape (n_agents, n_params), C-contiguous, in ``dtype``; updated in place by
        training. Write into it freely; assigning copies the values in (same shape, finite)."""
        return self._params

    @params.setter
    def params(self, value: Any) -> None:
        self._params[...] = C.check_array(
            "params", value, self._params.shape, f"for layers={self.layers}", dtype=self.dtype
        )

    @property
    def lr(self) -> np.ndarray:
        """Learning rate of each agent, shape (n_agents,), a read-only view; assign a number
        >= 0 or an array of shape (n_agents,) to change it."""
        return readonly(self._lr)

    @lr.setter
    def lr(self, value: Any) -> None:
        self._lr = C.check_lr(value, self.n_agents, self.dtype)

    def set_lr(self, lr: Any) -> None:
        """Change the learning rate(s): a scalar or an array of shape (n_agents,)."""
        self.lr = lr

    @property
    def optimizer_state(self) -> dict[str, np.ndarray]:
        """Read-only views of the optimizer state: ``t`` int64 (n_agents,) updates taken (Adam's
        bias correction), and ``m`` (momentum, adam) and ``v`` (adam), each (n_agents, n_params)."""
        state = {"t": readonly(self._t)}
        if self.optimizer != "sgd":
            state["m"] = readonly(self._m)
        if self.optimizer == "adam":
            state["v"] = readonly(self._v)
        return state

    def set_optimizer_state(self, **state: Any) -> None:
        """Replace parts of the optimizer state (keys of :attr:`optimizer_state`); each value is
        checked (shape, finite; ``v >= 0``; ``t`` integers >= 0) before any is copied in."""
        own = self.optimizer_state
        unknown = sorted(set(state) - set(own))
        if unknown:
            raise C.fail(
                "optimizer_state",
                unknown,
                f"keys among {sorted(own)} for optimizer={self.optimizer!r}",
            )
        checked = {}
        for key, value in state.items():
            name = f"optimizer_state[{key!r}]"
            if key == "t":
                checked[key] = C.check_counts(name, value, own["t"].shape)
            else:
                low = 0.0 if key == "v" else None
                checked[key] = C.check_array(
                    name, value, own[key].shape, "", low=low, dtype=self.dtype
                )
        for key, value in checked.items():
            getattr(self, "_" + key)[...] = value

    _HYPER = ("momentum", "beta1", "beta2", "eps", "weight_decay", "clip_norm", "on_divergence")

    def get_state(self) -> dict[str, Any]:
        """Everything training depends on, for a checkpoint (arrays are copies): ``layers``,
        ``optimizer``, ``dtype`` (checked on restore), ``params``, ``lr``,
        ``optimizer_state``, ``step_count`` and the optimizer constants."""
        return {
            "layers": list(self.layers),
            "optimizer": self.optimizer,
            "dtype": self.dtype.name,
            "params": self._params.copy(),
            "lr": self._lr.copy(),
            "optimizer_state": {k: v.copy() for k, v in self.optimizer_state.items()},
            "step_count": self.step_count,
            "loss_reference": self._loss_reference,
            "explosion_warned": self._explosion_warned,
            **{k: getattr(self, k) for k in self._HYPER},
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned (every value checked by its setter)."""
        if not isinstance(state, dict):
            raise C.fail("state", f"a {type(state).__name__}", "a dict from get_state()")
        keys = ("layers", "optimizer", "dtype", "params", "lr", "optimizer_state", "step_count")
        missing = [k for k in (*keys, *self._HYPER) if k not in state]
        if missing:
            raise C.fail("state", f"a dict without {missing}", "a dict from get_state()")
        for key in ("layers", "optimizer", "dtype"):
            own = getattr(self, key)
            own = list(own) if key == "layers" else str(own)
            if state[key] != own:
                raise C.fail(key, state[key], f"{own!r}, this population's (fixed) {key}")
        self.params = state["params"]
        self.lr = state["lr"]
        self.set_optimizer_state(**state["optimizer_state"])
        self.step_count = state["step_count"]
        reference = state.get("loss_reference")
        self._loss_reference = None if reference is None else float(reference)
        self._explosion_warned = bool(state.get("explosion_warned", False))
        for key in self._HYPER:
            setattr(self, key, state[key])

    # ------------------------------------------------------------------ input checks
    def _inputs(self, X: Any, name: str = "X", n_rows: int | None = None) -> np.ndarray:
        """X as (P or 1, B, d_in) in the population's dtype (cast at the boundary)."""
        X = C.as_real_array(name, X)
        d_in = self.layers[0]
        n_rows = self.n_agents if n_rows is None else n_rows
        if X.ndim == 2:
            X = X[None]
        if X.ndim != 3 or X.shape[0] not in (1, n_rows) or X.shape[2] != d_in or X.shape[1] < 1:
            raise C.fail(
                f"{name}.shape",
                X.shape,
                f"({n_rows}, B, {d_in}) per agent or (B, {d_in}) shared, with B >= 1",
            )
        return np.ascontiguousarray(X, dtype=self.dtype)

    def _targets(self, Y: Any, X: np.ndarray) -> np.ndarray:
        """Y as (P or 1, B, d_out); integer labels are one-hot encoded for cross-entropy.

        Integer Y of shape (B,) or (P or 1, B) are labels; any other shape is taken as targets
        (so integer one-hot rows (B, d_out) work too).
        """
        Y = C.as_real_array("Y", Y)
        given = Y.shape  # the shape the error names, whatever is made of Y below
        d_out, batch = self.layers[-1], X.shape[1]
        rows = (1, X.shape[0], self.n_agents)
        labels = Y.shape == (batch,) or (Y.ndim == 2 and Y.shape[1] == batch and Y.shape[0] in rows)
        cross_entropy = self.loss_name == "cross_entropy"
        if cross_entropy and Y.dtype.kind in "iu" and labels:
            if Y.size and (Y.min() < 0 or Y.max() >= d_out):
                raise C.fail("Y", f"labels in [{Y.min()}, {Y.max()}]", f"labels in [0, {d_out})")
            Y = np.eye(d_out, dtype=self.dtype)[Y]
        if Y.ndim == 2:
            Y = Y[None]
        if Y.ndim != 3 or Y.shape[0] not in rows or Y.shape[1:] != (batch, d_out):
            allowed = f"({X.shape[0]}, {batch}, {d_out}) to match X of shape {X.shape}"
            if cross_entropy:
                allowed += f", or integer class labels of shape ({X.shape[0]}, {batch})"
                if labels:
                    allowed += f" (Y's dtype is {Y.dtype})"
            raise C.fail("Y.shape", given, allowed)
        Y = np.ascontiguousarray(Y, dtype=self.dtype)
        self._check_target_range(Y)
        return Y

    def _check_target_range(self, Y: np.ndarray) -> None:
        """Cross-entropy targets are distributions (>= 0, each row summing to 1 within 1e-3);
        BCE targets are probabilities in [0, 1]. NaN rows pass: the kernel skips those agents.

        A kernel pass first proves the usual case fine (one read of Y, no temporaries: NumPy's
        check below cost 5.6 ms of social_learning's 10,000-agent step); only when it finds a
        row in doubt does the exact check run, and it alone decides and words the error."""
        if self.loss_name not in ("bce", "cross_entropy"):
            return
        rows = Y.reshape(-1, Y.shape[-1])
        slots = np.empty(blocks(rows.shape[0], KL.TARGET_ROWS), dtype=np.bool_)
        check = sized(KL.targets_doubtful, KL.targets_doubtful_serial, 4.0 * Y.size)
        check(rows, self._net.loss, slots)
        if not slots.any():
            return
        if self.loss_name == "bce":
            if np.any((Y < 0) | (Y > 1)):
                raise C.fail(
                    "Y", f"targets in [{np.nanmin(Y)}, {np.nanmax(Y)}]", "in [0, 1] for loss='bce'"
                )
        elif self.loss_name == "cross_entropy":
            sums = Y.sum(axis=-1)  # in Y's dtype: within 1e-4 of exact for 1000s of classes
            if np.any(Y < 0) or np.any(np.abs(sums - 1.0) > 1e-3):
                bad = sums[np.abs(sums - 1.0) > 1e-3]
                shown = f"rows summing to {bad.flat[0]:.6g}" if bad.size else "negative targets"
                raise C.fail(
                    "Y",
                    shown,
                    "probabilities (>= 0, each row summing to 1) or integer labels for "
                    "loss='cross_entropy'",
                )

    # ------------------------------------------------------------------ kernels
    def _opt(self) -> K.OptArrays:
        kind = C.OPTIMIZERS[self.optimizer]
        return K.OptArrays(
            kind,
            self._lr,
            self.momentum,
            self.beta1,
            self.beta2,
            self.eps,
            self.weight_decay,
            self.clip_norm,
            self._t,
            self._m,
            self._v,
            float(np.finfo(self.dtype).max),
        )

    def _run(self, X: Any, Y: Any, mode: int) -> tuple[np.ndarray, ...]:
        Xa = self._inputs(X)
        Ya = self._targets(Y, Xa)
        P, dt = self.n_agents, self.dtype
        losses = np.empty(P, dtype=dt)
        status = np.empty(P, dtype=np.int8)
        grads = np.empty((P, self.n_params) if mode == K.MODE_GRAD else (1, 1), dtype=dt)
        dx = np.empty((P, *Xa.shape[1:]) if mode == K.MODE_INPUT_GRAD else (1, 1, 1), dtype=dt)
        if mode == K.MODE_TRAIN:
            self.step_count += 1
        K.population_pass(
            self.params, Xa, Ya, self._net, self._opt(), mode, losses, status, grads, dx
        )
        self._check_status(status, losses, mode)
        return losses, grads, dx

    def _check_status(self, status: np.ndarray, losses: np.ndarray, mode: int) -> None:
        if not status.any():
            return
        applied = " Every other agent's update was applied." if mode == K.MODE_TRAIN else ""
        for code, name in _STATUS_TEXT.items():
            bad = np.flatnonzero(status == code)
            if bad.size:
                most = float(np.finfo(self.dtype).max)  # larger values become inf in the cast
                err = C.ParameterError(
                    f"{name} contains NaN or inf for agents {_show(bad)}: {name} must be finite "
                    f"in {self.dtype} (|values| <= {most:.3g}). Those agents were not "
                    f"updated.{applied}"
                )
                err.agents, err.losses = bad, losses
                raise err
        bad = np.flatnonzero(status == K.DIVERGED)
        shown = f"{losses[bad][:5]}{' ...' if bad.size > 5 else ''}"
        if mode == K.MODE_TRAIN:
            msg = (
                f"training diverged at step {self.step_count}: loss, gradient or update is NaN/inf "
                f"for agents {_show(bad)} (losses {shown}). Their parameters were kept as before "
                f"the step.{applied} Lower lr, set clip_norm, or check the data."
            )
        else:  # nothing is trained: the data (or the parameters) overflow the dtype
            what = {K.MODE_LOSS: "loss", K.MODE_GRAD: "loss or gradient"}.get(
                mode, "loss or input gradient"
            )
            msg = (
                f"the {what} is NaN/inf in {self.dtype} for agents {_show(bad)} (losses "
                f"{shown}); nothing was trained, the parameters are unchanged. Check the data's "
                f"scale (targets or inputs whose loss overflows {self.dtype}) and the parameters."
            )
        if self.on_divergence == "raise":
            raise C.DivergenceError(msg, self.step_count, bad, losses[bad])
        warnings.warn(msg, RuntimeWarning, stacklevel=3)

    def train_step(self, X: Any, Y: Any) -> np.ndarray:
        """One optimizer step for every agent on its own minibatch.

        Parameters
        ----------
        X : array, shape (P, B, d_in), or (B, d_in) shared by all agents.
        Y : array, shape (P, B, d_out) or (B, d_out); integer labels (P, B) or (B,) are
            accepted with ``loss="cross_entropy"``.

        Returns
        -------
        losses : array (P,), each agent's loss on its batch *before* the update.

        Raises
        ------
        ParameterError
            X or Y holds NaN or inf for some agents: those agents are not updated, every other
            agent is. The error's ``agents`` are the skipped agents, its ``losses`` (P,) what
            would have been returned.
        DivergenceError
            (``on_divergence="raise"``) a loss, gradient or updated parameter is not finite:
            those agents keep their parameters and optimizer state; every other agent is updated.
        """
        losses = self._run(X, Y, K.MODE_TRAIN)[0]
        self._watch_explosion(losses)
        return losses

    def _watch_explosion(self, losses: np.ndarray) -> None:
        """Warn once when a training loss exceeds EXPLOSION_FACTOR x max(1, median loss of the
        first training step): exploding, though still finite (lower lr or set clip_norm)."""
        if self._loss_reference is None:
            median = float(np.median(losses))
            self._loss_reference = max(1.0, median) if np.isfinite(median) else 1.0
            return
        worst = float(np.max(losses))
        if not self._explosion_warned and worst > EXPLOSION_FACTOR * self._loss_reference:
            self._explosion_warned = True
            bad = np.flatnonzero(losses > EXPLOSION_FACTOR * self._loss_reference)
            warnings.warn(
                f"training losses are exploding at step {self.step_count}: agents {_show(bad)} "
                f"have losses up to {worst:.3g}, above {EXPLOSION_FACTOR:.0e} x the first step's "
                f"median ({self._loss_reference:.3g}). Lower lr or set clip_norm.",
                RuntimeWarning,
                stacklevel=3,
            )

    def loss(self, X: Any, Y: Any) -> np.ndarray:
        """Each agent's loss on (X, Y) without updating anything; shape (P,)."""
        return self._run(X, Y, K.MODE_LOSS)[0]

    def gradients(self, X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
        """Per-agent gradients of the loss, shape (P, n_params), and the losses (P,)."""
        losses, grads, _ = self._run(X, Y, K.MODE_GRAD)
        return grads, losses

    def input_gradients(self, X: Any, Y: Any) -> np.ndarray:
        """Gradient of each agent's loss with respect to its inputs, shape (P, B, d_in)."""
        return self._run(X, Y, K.MODE_INPUT_GRAD)[2]

    def predict(
        self, X: Any, agents: np.ndarray | None = None, layer: int | None = None
    ) -> np.ndarray:
        """Outputs (or hidden activations) of every agent.

        Parameters
        ----------
        X : array, shape (P, B, d_in), or (B, d_in) shared (a probe set).
        agents : int array or boolean mask of shape (P,), optional
            Only these agents (rows of the result follow its order).
        layer : int, optional
            1..L: activations after that layer (L, the default, is the output).

        Returns
        -------
        array, shape (len(agents) or P, B, d_layer)
        """
        idx = None
        if agents is not None:
            idx = C.check_agents("agents", agents, self.n_agents)
            if idx.ndim != 1:
                raise C.fail("agents", agents, "a 1-D integer array of agent indices")
        Xa = self._inputs(X, n_rows=self.n_agents if idx is None else idx.shape[0])
        if not np.all(np.isfinite(Xa)):
            raise C.fail("X", "an array with NaN or inf", "finite everywhere")
        L = self.layout.n_layers
        layer = L if layer is None else C.check_int("layer", layer, 1, L)
        if layer == L and Xa.shape[0] == 1:  # one input set for all (a probe): the same bits
            rows = np.arange(self.n_agents) if idx is None else idx
            return KP.shared_outputs(self.params, rows.astype(np.int64), Xa, self._net)
        params = self.params if idx is None else self.params[idx]
        out = np.empty((params.shape[0], Xa.shape[1], self.layers[layer]), dtype=self.dtype)
        K.population_forward(params, Xa, self._net, layer, out)
        return out

    def __repr__(self) -> str:
        return (
            f"Population(n_agents={self.n_agents}, layers={self.layers}, "
            f"activation={self.activation!r}, output={self.output!r}, loss={self.loss_name!r}"
            f", optimizer={self.optimizer!r}, dtype={self.dtype.name!r}"
            f"{'' if self.bias else ', bias=False'})"
        )


def _check_bias(bias: Any) -> bool:
    """``bias`` as a bool: True or False (numpy booleans too), nothing else."""
    if not isinstance(bias, bool | np.bool_):
        raise C.fail("bias", bias, "True or False")
    return bool(bias)


def _show(agents: np.ndarray, most: int = 10) -> str:
    head = ", ".join(str(a) for a in agents[:most])
    return f"[{head}{', ...' if agents.size > most else ''}] ({agents.size} in all)"


__all__ = ["Population"]
