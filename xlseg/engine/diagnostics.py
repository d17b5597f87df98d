"""Whether a clustering is usable: the checks that catch a method failing silently.

Every method returns labels, even when they say nothing: DBSCAN putting every
customer into one cluster, agglomerative clustering splitting off single
customers, affinity propagation making a cluster of every few customers. These
checks read only the labels, so they apply to every method alike, and the
result says in words what is wrong, for the methods table and the report.

A clustering is *degenerate* when any of these holds:

- no customer is in a segment (everything is noise), or fewer than two segments;
- one segment holds more than :data:`MAX_LARGEST_SHARE` of the customers
  (noise included in the count), so the others are splinters;
- a segment has :data:`TINY_SIZE` customers or fewer (a segment of one or two
  customers describes those customers, not a group);
- there are more segments than a third of the customers
  (:data:`MAX_CLUSTERS_PER_CUSTOMER`), which is a partition into near-pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Diagnostics", "diagnose", "MAX_LARGEST_SHARE", "TINY_SIZE"]

#: A segment holding more than this share of the customers makes the clustering degenerate.
MAX_LARGEST_SHARE = 0.8
#: Segments of at most this many customers are "tiny".
TINY_SIZE = 2
#: More segments than this fraction of the customers is degenerate.
MAX_CLUSTERS_PER_CUSTOMER = 1 / 3


@dataclass(frozen=True)
class Diagnostics:
    """How usable one clustering is.

    Attributes
    ----------
    largest_share : float
        Share of all customers (noise included in the total) in the largest
        segment; 0 when there is no segment.
    tiny_clusters : int
        Segments of :data:`TINY_SIZE` customers or fewer.
    noise_share : float
        Share of customers left out as noise (DBSCAN, HDBSCAN); 0 otherwise.
    degenerate : bool
        True when the clustering should not be used as a segmentation.
    reason : str
        Why it is degenerate, in plain words (several reasons joined by "; ");
        empty when it is not.
    """

    largest_share: float
    tiny_clusters: int
    noise_share: float
    degenerate: bool
    reason: str


def diagnose(labels: np.ndarray, problems: Sequence[str] = ()) -> Diagnostics:
    """The checks of the module docstring on one labelling (``-1`` = noise).

    Parameters
    ----------
    labels : array of int, shape (n_customers,)
        Segment of each customer, ``-1`` for noise.
    problems : sequence of str
        Failures the method itself found (DBSCAN: no ``eps`` separates
        groups); each makes the result degenerate and leads its reason.

    Returns
    -------
    Diagnostics
    """
    labels = np.asarray(labels)
    n = labels.size
    members = labels[labels >= 0]
    sizes = np.unique(members, return_counts=True)[1] if members.size else np.zeros(0, int)
    n_clusters = sizes.size
    largest = float(sizes.max() / n) if n_clusters and n else 0.0
    tiny = int(np.sum(sizes <= TINY_SIZE))
    noise = float((n - members.size) / n) if n else 0.0
    reasons = list(problems)
    if n_clusters == 0:
        reasons.append("every customer is noise: no segment was found")
    elif n_clusters == 1:
        reasons.append(f"only one segment ({largest:.0%} of the customers)")
    elif largest > MAX_LARGEST_SHARE:
        reasons.append(
            f"one segment holds {largest:.0%} of the customers "
            f"(more than {MAX_LARGEST_SHARE:.0%}): the others are splinters"
        )
    if tiny:
        reasons.append(f"{tiny} segment{'s' if tiny > 1 else ''} of only one or two customers")
    if n_clusters > n * MAX_CLUSTERS_PER_CUSTOMER:
        reasons.append(
            f"{n_clusters} segments for {n} customers (more than a third of the customers)"
        )
    return Diagnostics(
        largest_share=largest,
        tiny_clusters=tiny,
        noise_share=noise,
        degenerate=bool(reasons),
        reason="; ".join(reasons),
    )
