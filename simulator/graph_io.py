"""Reading social graphs from files: GraphML and edge lists, with clear errors."""

from __future__ import annotations

import ast
import re
import warnings
from pathlib import Path

import networkx as nx

from simulator.config import ParameterError

EDGE_LIST_SUFFIXES = (".edgelist", ".txt", ".csv", ".tsv", ".el")
_HEADER_WORDS = {"source", "target", "from", "to", "u", "v", "src", "dst", "node1", "node2"}
_INT = re.compile(r"[+-]?\d+\Z")


def read_graph_file(path: Path) -> nx.Graph:
    name = f"graph file {str(path)!r}"
    if not path.is_file():
        raise ParameterError(f"{name} does not exist (or is not a file).")
    suffix = path.suffix.lower()
    if suffix not in (".graphml", *EDGE_LIST_SUFFIXES):
        raise ParameterError(
            f"{name} has an unknown suffix {suffix!r}: use .graphml or an edge list "
            f"({', '.join(EDGE_LIST_SUFFIXES)})."
        )
    try:
        if suffix == ".graphml":
            G = nx.read_graphml(path)
            ints = all(isinstance(u, str) and _INT.match(u) for u in G)
            return nx.relabel_nodes(G, {u: int(u) for u in G}) if ints else G
        return _read_edge_list(path, name)
    except ParameterError as exc:
        raise ParameterError(f"{name}: {exc}") from None
    except Exception as exc:  # any parser failure becomes one clear message
        kind = "GraphML" if suffix == ".graphml" else "an edge list"
        raise ParameterError(
            f"{name} could not be read as {kind}: {type(exc).__name__}: {exc}"
        ) from None


def _read_edge_list(path: Path, name: str) -> nx.Graph:
    """Nodes 0..n-1 (sorted labels, original in ``"label"``), parallel edges merged."""
    nodes: list[str] = []
    us: list[str] = []
    vs: list[str] = []
    attrs: list[dict] = []
    first = True
    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.split("#", 1)[0] if "#" in raw else raw
            braced = ""
            if "{" in line:
                line, braced = line.split("{", 1)
                braced = "{" + braced
            tokens = line.replace(",", " ").split()
            if not tokens and not braced:
                continue
            if first and len(tokens) >= 2 and tokens[0].lower() in _HEADER_WORDS:
                first = False
                continue
            first = False
            if not tokens:
                raise ParameterError(f"line {lineno} has no node label: {raw.strip()!r}")
            if len(tokens) == 1:
                nodes.append(tokens[0])
                continue
            us.append(tokens[0])
            vs.append(tokens[1])
            if braced or len(tokens) > 2:
                attrs.extend({} for _ in range(len(us) - 1 - len(attrs)))
                attrs.append(_edge_attrs(tokens[2:], braced, lineno))
    labels = set(nodes).union(us, vs)
    value = {u: int(u) for u in labels} if all(_INT.match(u) for u in labels) else {}
    order = sorted(set(value.values())) if value else sorted(labels)  # "07" and "7": one node
    pos = {lab: i for i, lab in enumerate(order)}
    idx = {u: pos[value[u]] for u in labels} if value else pos
    G = nx.Graph()
    G.add_nodes_from((i, {"label": lab}) for i, lab in enumerate(order))
    pairs = list(zip(map(idx.__getitem__, us), map(idx.__getitem__, vs)))
    if attrs:
        attrs.extend({} for _ in range(len(pairs) - len(attrs)))
        G.add_edges_from((u, v, a) for (u, v), a in zip(pairs, attrs))
    else:
        G.add_edges_from(pairs)
    merged = len(pairs) - G.number_of_edges()
    if merged:
        warnings.warn(f"{name} has {merged} parallel edge(s); merged.", UserWarning, stacklevel=4)
    return G


def _edge_attrs(extra: list[str], braced: str, lineno: int) -> dict:
    if braced:
        try:
            attrs = ast.literal_eval(braced)
        except ValueError:  # a name (nan, inf, true) or a call: not a literal
            raise ParameterError(
                f"line {lineno}: edge attributes {braced.strip()!r} are not a literal dict "
                "(numbers and quoted strings only)"
            ) from None
        if not isinstance(attrs, dict):
            raise ParameterError(f"line {lineno}: edge attributes {braced!r} are not a dict")
        return attrs
    if extra:
        try:
            return {"weight": float(extra[0])}
        except ValueError:
            raise ParameterError(
                f"line {lineno}: third column {extra[0]!r} is not a number (edge weight)"
            ) from None
    return {}
