"""Sample data with planted segments, in the layout of the WineKMC workbook.

A demo and the tests need data whose right answer is known. Here each
planted segment has a taste that makes business sense -- Pinot Noir lovers,
buyers of small quantities, bubbly bargain hunters, fans of French wine... --
and the offers are generated so that each one carries exactly one segment's
signature attribute. A segment's customers mostly take "their" offers, so
clustering should find the segments and profiling should explain them by the
attribute that defines them (a high lift for "Varietal = Pinot Noir", say).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pandas as pd

from xlseg.errors import XlsegError

__all__ = ["SEGMENT_THEMES", "SampleData", "make_sample"]

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

# Attribute values of offers that carry no segment's signature.
_NEUTRAL_VARIETALS = ("Malbec", "Merlot", "Chardonnay", "Pinot Grigio")
_NEUTRAL_ORIGINS = (
    "Oregon",
    "California",
    "Chile",
    "Australia",
    "South Africa",
    "New Zealand",
    "Germany",
)
_NEUTRAL_MIN_QTY = (72,)
_NEUTRAL_DISCOUNT = (10, 59)


@dataclass(frozen=True)
class _Theme:
    """A segment's taste: the attribute values its preferred offers share."""

    description: str
    varietals: tuple[str, ...] | None = None
    min_qty: tuple[int, ...] | None = None
    discount: tuple[int, int] | None = None
    origins: tuple[str, ...] | None = None
    past_peak: bool | None = None


_THEMES = (
    _Theme("Pinot Noir lovers", varietals=("Pinot Noir",)),
    _Theme("buyers of small quantities (6-12 kg minimum)", min_qty=(6, 12)),
    _Theme(
        "bubbly bargain hunters (sparkling wine at 60-90% off)",
        varietals=("Champagne", "Prosecco", "Espumante"),
        discount=(60, 90),
    ),
    _Theme("fans of French wine", origins=("France",)),
    _Theme("buyers of past-peak wine", past_peak=True),
    _Theme("Cabernet Sauvignon drinkers", varietals=("Cabernet Sauvignon",)),
    _Theme("fans of Italian wine", origins=("Italy",)),
    _Theme("bulk buyers (144 kg minimum)", min_qty=(144,)),
)

#: Plain-English taste of planted segment 0, 1, ... (at most this many segments).
SEGMENT_THEMES: tuple[str, ...] = tuple(t.description for t in _THEMES)

_SURNAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Garcia",
    "Rodriguez", "Wilson", "Martinez", "Anderson", "Taylor", "Thomas", "Hernandez",
    "Moore", "Martin", "Jackson", "Thompson", "White", "Lopez", "Lee", "Gonzalez",
    "Harris", "Clark", "Lewis", "Robinson", "Walker", "Perez", "Hall", "Young", "Allen",
    "Sanchez", "Wright", "King", "Scott", "Green", "Baker", "Adams", "Nelson", "Hill",
    "Ramirez", "Campbell", "Mitchell", "Roberts", "Carter", "Phillips", "Evans", "Turner",
    "Torres", "Parker", "Collins", "Edwards", "Stewart", "Flores", "Morris", "Nguyen",
    "Murphy", "Rivera", "Cook", "Rogers", "Morgan", "Peterson", "Cooper", "Reed", "Bailey",
    "Bell", "Gomez", "Kelly", "Howard", "Ward", "Cox", "Diaz", "Richardson", "Wood",
    "Watson", "Brooks", "Bennett", "Gray", "James", "Reyes", "Cruz", "Hughes", "Price",
    "Myers", "Long", "Foster", "Sanders", "Ross", "Morales", "Powell", "Sullivan",
    "Russell", "Ortiz", "Jenkins", "Gutierrez", "Perry", "Butler", "Barnes", "Fisher",
    "Henderson", "Coleman", "Simmons", "Patterson", "Jordan", "Reynolds", "Hamilton",
    "Graham", "Kim", "Gonzales", "Alexander", "Ramos", "Wallace", "Griffin", "West",
    "Cole", "Hayes", "Chavez", "Gibson", "Bryant", "Ellis", "Stevens", "Murray", "Ford",
    "Marshall", "Owens", "McDonald", "Harrison", "Ruiz", "Kennedy", "Wells", "Alvarez",
    "Woods", "Mendoza", "Castillo", "Olson", "Webb", "Washington", "Tucker", "Freeman",
    "Burns", "Henry", "Vasquez", "Snyder", "Simpson", "Crawford", "Jimenez", "Porter",
    "Mason", "Shaw", "Gordon", "Wagner", "Hunter", "Romero", "Hicks", "Dixon", "Hunt",
    "Palmer", "Robertson", "Black", "Holmes", "Stone", "Meyer", "Boyd", "Mills", "Warren",
    "Fox", "Rose", "Rice", "Moreno", "Schmidt", "Patel", "Ferguson", "Nichols", "Herrera",
    "Medina", "Ryan", "Fernandez", "Weaver", "Daniels", "Stephens", "Gardner", "Payne",
    "Kelley", "Dunn", "Pierce", "Arnold", "Tran", "Spencer", "Peters", "Hawkins", "Grant",
    "Hansen", "Castro", "Hoffman", "Hart", "Elliott", "Cunningham", "Knight", "Bradley",
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class SampleData:
    """Sample offers and transactions, with the segments that generated them.

    Attributes
    ----------
    offers : pandas.DataFrame
        The WineKMC layout: ``"Offer #"`` (1, 2, ...), ``"Campaign"`` (month
        name), ``"Varietal"``, ``"Minimum Qty (kg)"``, ``"Discount (%)"``,
        ``"Origin"``, ``"Past Peak"`` (bool).
    transactions : pandas.DataFrame
        ``"Customer Last Name"`` and ``"Offer #"``, grouped by customer; no
        pair appears twice.
    membership : pandas.Series
        Planted segment (0 .. n_segments - 1) of each customer, indexed by
        customer name.
    themes : tuple of str
        The taste of each planted segment, in segment order, to check that a
        profile found the right attribute.
    """

    offers: pd.DataFrame
    transactions: pd.DataFrame
    membership: pd.Series
    themes: tuple[str, ...]


def _check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise XlsegError(f"{name} must be a whole number, got {value!r}")
    if value < low or (high is not None and value > high):
        limit = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise XlsegError(f"{name} must be {limit}, got {value}")
    return int(value)


def _check_real(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value):
        raise XlsegError(f"{name} must be a number, got {value!r}")
    if not low <= value <= high:
        raise XlsegError(f"{name} must be between {low:g} and {high:g}, got {value:g}")
    return float(value)


def _random_subsets(
    rng: np.random.Generator, pool_sizes: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """Row ``i``: ``counts[i]`` distinct indices drawn uniformly from ``range(pool_sizes[i])``.

    Floyd's algorithm, run for all rows at once: step ``s`` adds one index to
    every row that still needs one, so the work is bounded by the largest
    count instead of looping over customers. Unused slots hold -1.
    """
    width = int(counts.max(initial=0))
    chosen = np.full((len(counts), width), -1, dtype=np.int64)
    for step in range(width):
        active = np.flatnonzero(counts > step)
        top = pool_sizes[active] - counts[active] + step
        pick = rng.integers(0, top + 1)
        seen = (chosen[active, :step] == pick[:, None]).any(axis=1)
        chosen[active, step] = np.where(seen, top, pick)
    return chosen


def _make_offers(rng: np.random.Generator, theme_of_offer: np.ndarray) -> pd.DataFrame:
    """Offers whose signature attributes follow their theme; the rest is neutral."""
    n = len(theme_of_offer)
    varietal = rng.choice(np.array(_NEUTRAL_VARIETALS, dtype=object), n)
    origin = rng.choice(np.array(_NEUTRAL_ORIGINS, dtype=object), n)
    min_qty = rng.choice(np.array(_NEUTRAL_MIN_QTY), n)
    discount = rng.integers(_NEUTRAL_DISCOUNT[0], _NEUTRAL_DISCOUNT[1] + 1, n)
    past_peak = np.zeros(n, dtype=bool)
    for number, theme in enumerate(_THEMES):
        mine = np.flatnonzero(theme_of_offer == number)
        if theme.varietals:
            varietal[mine] = rng.choice(np.array(theme.varietals, dtype=object), mine.size)
        if theme.origins:
            origin[mine] = rng.choice(np.array(theme.origins, dtype=object), mine.size)
        if theme.min_qty:
            min_qty[mine] = rng.choice(np.array(theme.min_qty), mine.size)
        if theme.discount:
            discount[mine] = rng.integers(theme.discount[0], theme.discount[1] + 1, mine.size)
        if theme.past_peak is not None:
            past_peak[mine] = theme.past_peak
    month = np.arange(n) * len(_MONTHS) // n
    return pd.DataFrame(
        {
            "Offer #": np.arange(1, n + 1),
            "Campaign": np.array(_MONTHS, dtype=object)[month],
            "Varietal": varietal,
            "Minimum Qty (kg)": min_qty,
            "Discount (%)": discount,
            "Origin": origin,
            "Past Peak": past_peak,
        }
    )


def _customer_names(n: int) -> np.ndarray:
    """Unique surnames; a number is added only once the list of surnames runs out."""
    base = len(_SURNAMES)
    names = [
        _SURNAMES[i % base] if i < base else f"{_SURNAMES[i % base]} {i // base + 1}"
        for i in range(n)
    ]
    return np.array(names, dtype=object)


def make_sample(
    n_customers: int = 100,
    n_offers: int = 32,
    n_segments: int = 4,
    *,
    offers_per_customer: float = 6.0,
    separation: float = 0.9,
    seed: int = 0,
) -> SampleData:
    """Generate offers and transactions with known, business-like segments.

    Parameters
    ----------
    n_customers : int, default 100
        Customers, split as evenly as possible between the segments.
    n_offers : int, default 32
        Offers, dealt evenly to the segments' tastes (see
        :data:`SEGMENT_THEMES`) and spread over the twelve campaign months.
    n_segments : int, default 4
        Planted segments, 1 to ``len(SEGMENT_THEMES)``.
    offers_per_customer : float, default 6.0
        Mean number of distinct offers a customer takes (1 + Poisson, so every
        customer takes at least one; capped at ``n_offers``). WineKMC has 3.24,
        but with so few picks per customer even perfectly planted segments
        blur: at 6, k-means recovers the default segments (adjusted Rand index
        >= 0.9) and the mean silhouette peaks at the planted K.
    separation : float, default 0.9
        Expected share of a customer's picks among their segment's preferred
        offers (those carrying its signature attribute); the other picks are
        spread uniformly over the remaining offers. A share near
        ``1 / n_segments`` means no structure; 1 means customers take only
        their segment's offers.
    seed : int, default 0
        Seed of the random generator: the same arguments give the same data.

    Returns
    -------
    SampleData

    Raises
    ------
    XlsegError
        If a parameter is out of range.
    """
    n_segments = _check_int("n_segments", n_segments, 1, len(_THEMES))
    n_customers = _check_int("n_customers", n_customers, n_segments)
    n_offers = _check_int("n_offers", n_offers, n_segments)
    offers_per_customer = _check_real("offers_per_customer", offers_per_customer, 1, n_offers)
    separation = _check_real("separation", separation, 0, 1)
    seed = _check_int("seed", seed, 0)
    rng = np.random.default_rng(seed)

    theme_of_offer = rng.permutation(np.arange(n_offers) % n_segments)
    offers = _make_offers(rng, theme_of_offer)

    # Per segment, its preferred offers and the others, as padded lookup rows.
    order = np.argsort(theme_of_offer, kind="stable")
    n_preferred = np.bincount(theme_of_offer, minlength=n_segments)
    preferred = np.split(order, np.cumsum(n_preferred)[:-1])
    others = [np.setdiff1d(np.arange(n_offers), p) for p in preferred]
    preferred_table = np.stack([np.pad(p, (0, n_offers - p.size)) for p in preferred])
    other_table = np.stack([np.pad(o, (0, n_offers - o.size)) for o in others])

    segment = rng.permutation(np.arange(n_customers) % n_segments)
    picks = 1 + rng.poisson(offers_per_customer - 1, n_customers)
    picks = np.minimum(picks, n_offers)
    pool = n_preferred[segment]
    from_preferred = np.minimum(rng.binomial(picks, separation), pool)
    # Too few other offers left: the excess comes from the preferred ones.
    from_preferred = np.maximum(from_preferred, picks - (n_offers - pool))
    from_others = picks - from_preferred

    chosen_preferred = _random_subsets(rng, pool, from_preferred)
    chosen_others = _random_subsets(rng, n_offers - pool, from_others)
    customer_parts, offer_parts = [], []
    for chosen, table in ((chosen_preferred, preferred_table), (chosen_others, other_table)):
        who, slot = np.nonzero(chosen >= 0)
        customer_parts.append(who)
        offer_parts.append(table[segment[who], chosen[who, slot]])
    customer = np.concatenate(customer_parts)
    offer = np.concatenate(offer_parts)
    by_customer = np.lexsort((offer, customer))

    names = _customer_names(n_customers)
    transactions = pd.DataFrame(
        {
            "Customer Last Name": pd.array(names[customer[by_customer]], dtype="str"),
            "Offer #": offer[by_customer] + 1,
        }
    )
    membership = pd.Series(
        segment, index=pd.Index(names, dtype="str", name="Customer"), name="Segment"
    )
    return SampleData(
        offers=offers,
        transactions=transactions,
        membership=membership,
        themes=SEGMENT_THEMES[:n_segments],
    )
