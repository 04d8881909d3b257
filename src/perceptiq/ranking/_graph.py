"""Connectivity of a paired-comparison design: when the maximum-likelihood scores exist and are identifiable.

With counts ``C[i, j]`` (votes for ``i`` over ``j``) the unpenalised maximum-likelihood scores of Thurstone
Case V and Bradley-Terry exist (are finite) iff the directed *wins* graph (edge ``i -> j`` when
``C[i, j] > 0``) is strongly connected (Zermelo 1929; Ford 1957), and the scores of two items are comparable
only if the undirected *comparison* graph (edge when ``C[i, j] + C[j, i] > 0``) links them (weak
connectivity).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.sparse import coo_array, csr_array
from scipy.sparse.csgraph import connected_components

from perceptiq.errors import UndefinedStatisticError

__all__ = [
    "DisconnectedComparisonsError",
    "check_comparison_graph",
    "check_wins_edges",
    "describe_separation",
]

_MAX_SHOWN_COMPONENTS = 6
_MAX_SHOWN_ITEMS = 8


class DisconnectedComparisonsError(UndefinedStatisticError):
    """The comparison design cannot give finite, comparable scores; ``components`` lists the item groups."""

    def __init__(self, message: str, components: list[list[str]], connection: str) -> None:
        self.components = components
        self.connection = connection
        super().__init__(message)


def _graph(winners: np.ndarray, losers: np.ndarray, n: int) -> csr_array:
    """Adjacency of the edges ``winners[k] -> losers[k]``.

    Built directly when the edges come sorted and unique (the nonzero cells of a count matrix); otherwise
    through COO, which also merges repeated edges (csgraph's strong components can loop forever on them).
    """
    keys = winners * n + losers
    if np.any(keys[1:] <= keys[:-1]):
        return coo_array((np.ones(winners.size), (winners, losers)), shape=(n, n)).tocsr()
    return sorted_csr(np.ones(winners.size), winners, losers, n)


def sorted_csr(data: np.ndarray, rows: np.ndarray, cols: np.ndarray, n: int) -> csr_array:
    """(n, n) CSR of entries already sorted by ``(row, col)`` and unique: no conversion, no sorting."""
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return csr_array((data, cols, indptr), shape=(n, n))


def _components(graph: csr_array, connection: str) -> tuple[int, np.ndarray]:
    n_comp, labels = connected_components(graph, directed=True, connection=connection)
    return int(n_comp), labels


def _groups(labels: np.ndarray, n_comp: int, items: Sequence[str]) -> list[list[str]]:
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_comp + 1))
    groups = [[items[i] for i in order[bounds[c] : bounds[c + 1]]] for c in range(n_comp)]
    return sorted(groups, key=lambda g: (-len(g), g))


def _describe(groups: list[list[str]]) -> str:
    shown = []
    for group in groups[:_MAX_SHOWN_COMPONENTS]:
        names = ", ".join(group[:_MAX_SHOWN_ITEMS])
        more = f", ... (+{len(group) - _MAX_SHOWN_ITEMS})" if len(group) > _MAX_SHOWN_ITEMS else ""
        shown.append("{" + names + more + "}")
    if len(groups) > _MAX_SHOWN_COMPONENTS:
        shown.append(f"... (+{len(groups) - _MAX_SHOWN_COMPONENTS} more)")
    return "; ".join(shown)


def describe_separation(winners: np.ndarray, losers: np.ndarray, items: Sequence[str]) -> tuple[int, str]:
    """Strongly connected components of the wins graph and a one-line description naming them.

    The description also names the items of the components that never lost to anyone outside their
    component: their scores diverge to +infinity without a prior.
    """
    n_comp, labels = _components(_graph(winners, losers, len(items)), "strong")
    across = labels[winners] != labels[losers]
    beaten = np.isin(labels, labels[losers[across]])
    top = [items[i] for i in np.flatnonzero(~beaten)]
    text = (
        f"{n_comp} components: {_describe(_groups(labels, n_comp, items))}; "
        f"never beaten by the rest: {_describe([top])}"
    )
    return n_comp, text


def check_wins_edges(
    winners: np.ndarray, losers: np.ndarray, items: Sequence[str], *, require_strong: bool
) -> bool:
    """:func:`check_comparison_graph` on the edges ``winners[k] -> losers[k]`` (at least one vote each)."""
    graph = _graph(winners, losers, len(items))
    n_strong, strong = _components(graph, "strong")
    if n_strong == 1:  # strongly connected implies connected
        return True
    n_weak, weak = _components(graph, "weak")
    if n_weak > 1:
        groups = _groups(weak, n_weak, items)
        raise DisconnectedComparisonsError(
            f"the comparison graph is not connected ({n_weak} components with no votes between them, so "
            f"their scores are not comparable): {_describe(groups)}",
            groups,
            "weak",
        )
    if require_strong:
        _, text = describe_separation(winners, losers, items)
        raise DisconnectedComparisonsError(
            "the maximum-likelihood scores do not exist: the wins graph is not strongly connected "
            f"({text}); pass a ridge prior > 0 (e.g. 0.01)",
            _groups(strong, n_strong, items),
            "strong",
        )
    return False


def check_comparison_graph(counts: np.ndarray, items: Sequence[str], *, require_strong: bool) -> bool:
    """Check the design behind a count matrix; return whether the wins graph is strongly connected.

    Raises :class:`DisconnectedComparisonsError` naming the components when the comparison graph is not
    (weakly) connected, or, with ``require_strong``, when the wins graph is not strongly connected (then the
    unpenalised MLE does not exist: some scores diverge to +-infinity and a ridge prior is needed).
    """
    counts = np.asarray(counts)
    winners, losers = np.nonzero(counts)
    keep = winners != losers
    return check_wins_edges(winners[keep], losers[keep], items, require_strong=require_strong)
