"""What ``simulator run`` tells the user while it runs: progress, a hint, a cold-cache notice.

* Progress: a tqdm bar when stderr is a terminal; otherwise (a log file, a cluster job) one
  plain line every 10% of the steps or 30 s.
* A hint, once, when measuring dominates: after at least 5 steps and 2 s, if the model's
  ``timings["measure"]`` is more than half of the time spent in steps.
* A notice before the model is built when the kernels every model runs have no cached machine
  code for the run's dtype (so the silence that follows is explained): see :func:`kernels_cold`.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["StepProgress", "kernels_cold"]

HINT_SHARE = 0.5  # measuring above this share of the step time earns a hint


def kernels_cold(dtype: str) -> bool:
    """True when no training kernel (register tiles or lanes), or no probe pass (parallel or
    serial: every collect runs one), has valid cached code for ``dtype`` here.

    Numba specializes on types, not shapes: once a model of ``dtype`` has been built, stepped
    and measured, these and most other kernels are cached for every model of that dtype; what
    another model may still compile without a notice is what it alone uses (the other
    training family: networks too wide for lanes, or small ones; its task's data kernel, its
    rules' kernels). Reads Numba's cache indexes (private API, guarded: any surprise answers
    False, no notice; a stale index, e.g. after the kernel source changed, counts as cold); a
    few ms.
    """
    try:
        from simulator.kernels import lanes, measure_probe, mlp

        def cached(*kernels: Any) -> bool:
            for kernel in kernels:
                index = kernel._cache._cache_file._load_index()  # {} when missing or stale
                if any(str(key[0][0].dtype) == dtype for key in index):
                    return True
            return False

        training = cached(mlp._population_pass, lanes.population_lanes)
        return not (training and cached(measure_probe.probe_pass, measure_probe.probe_pass_serial))
    except Exception:
        return False


class StepProgress:
    """Progress of one run from step ``start`` to ``total``.

    ``update(model)`` after each step, ``write(text)`` for a message that must not garble the
    bar, ``close()`` at the end. ``quiet`` silences everything.
    """

    def __init__(
        self, total: int, start: int = 0, quiet: bool = False, stream: TextIO | None = None
    ):
        self.total, self.start_step, self.quiet = total, start, quiet
        self.stream = stream if stream is not None else sys.stderr
        self.done = start
        self.t0 = self.last = time.monotonic()
        self.hinted = False
        self.bar = None
        if not quiet and getattr(self.stream, "isatty", lambda: False)():
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, initial=start, unit="step", file=self.stream, dynamic_ncols=True
            )

    def update(self, model: Any) -> None:
        self.done = int(model.steps)
        if self.quiet:
            return
        self._hint(model)
        if self.bar is not None:
            self.bar.update(self.done - self.bar.n)
            return
        now = time.monotonic()
        tenth = max((self.total - self.start_step) // 10, 1)
        if (self.done - self.start_step) % tenth == 0 or now - self.last > 30:
            self.last = now
            rate = (self.done - self.start_step) / max(now - self.t0, 1e-9)
            eta = (self.total - self.done) / max(rate, 1e-9)
            self.write(f"step {self.done}/{self.total}  {rate:.1f} steps/s  ETA {eta:.0f} s")

    def _hint(self, model: Any) -> None:
        if self.hinted or self.done - self.start_step < 5 or time.monotonic() - self.t0 < 2:
            return
        timings = getattr(model, "timings", None) or {}
        spent = sum(timings.values())
        share = timings.get("measure", 0.0) / spent if spent > 0 else 0.0
        if share <= HINT_SHARE:
            return
        self.hinted = True
        p = getattr(model, "p", {})
        self.write(
            f"hint: measuring takes {share:.0%} of each step (collect_every="
            f"{p.get('collect_every')}, measures={p.get('measures')!r}); --set collect_every=10 "
            "or --set measures=fast makes the run faster"
        )

    def write(self, text: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
