"""Helpers for declaring scenarios."""

from __future__ import annotations

from simulator.params import with_defaults

__all__ = ["with_defaults"]
