"""The run settings and the bounds of every engine parameter, checked in one place.

One table of settings keeps the fronts in agreement: the ``xlseg settings``
sheet of a workbook (two columns, ``Setting | Value``), the options of
``xlseg run``, the ribbon's Settings button and the worksheet functions' arguments
all use these keys, these defaults and these bounds. Options given on the
command line win over the sheet, and the sheet wins over the defaults; every
front goes through `parse_settings` (or `parse_setting` for one value), and
`xlseg.engine.segmentation.segment` checks its parameters with
`check_parameters`, so a value is refused the same way wherever it was given.

Every number has an upper bound: a workbook can carry its own settings sheet,
and ``gap_refs = 5000000`` in it would otherwise keep a run busy for hours
(the gap statistic fits B x K x starts k-means models). The bounds are wide
enough for any analysis a person reads: 100 segments, 1,000 reference sets,
a seed of 32 bits (what NumPy's and scikit-learn's generators accept).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from xlseg.errors import XlsegError

SETTINGS_SHEET = "xlseg settings"

METHOD_CHOICES = ("kmeans", "affinity", "spectral", "agglomerative", "dbscan", "hdbscan")
METRIC_CHOICES = ("euclidean", "jaccard", "cosine")
GAP_REFERENCE_CHOICES = ("pca", "uniform", "permute", "curveball")
LINKAGE_CHOICES = ("ward", "average", "complete", "single")

MAX_K = 100
"""Most segments (fixed K or the top of the K range): beyond it no one reads the profiles."""
MAX_SEED = 2**32 - 1
"""Largest seed: NumPy's ``RandomState`` and scikit-learn take 32-bit seeds."""
MAX_GAP_REFS = 1000
"""Most reference sets of the gap statistic: ten times R's default of 100."""


def _whole_number(text: str, low: int, high: int) -> int:
    """A whole number in ``low..high`` from text or a number's text (``"4"``, ``"4.0"``)."""
    try:
        number = float(text)
    except ValueError:
        raise ValueError(text) from None
    if not math.isfinite(number) or not number.is_integer() or not low <= number <= high:
        raise ValueError(text)
    return int(number)


def _whole(low: int, high: int) -> Callable[[str], int]:
    return lambda text: _whole_number(text, low, high)


def _bounded(low: int, high: int, forbidden: tuple[int, ...] = ()) -> Callable[[str], int]:
    def parse(text: str) -> int:
        number = _whole_number(text, low, high)
        if number in forbidden:
            raise ValueError(text)
        return number

    return parse


def _k(text: str) -> int | str:
    return "auto" if text.strip().lower() == "auto" else _whole_number(text, 2, MAX_K)


def _text(text: str) -> str | None:
    return text.strip() or None


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ValueError(text)
        return value

    return parse


def _range_text(low: int, high: int) -> str:
    return f"a whole number from {low:,} to {high:,}"


@dataclass(frozen=True)
class Setting:
    """One setting: its key, default, a line of help and how its text is read.

    ``parse`` turns the text of a cell or an option into the value, raising
    ValueError when the text is not one of ``allowed`` (said in words);
    ``choices`` lists the values of a drop-down, when there is one;
    ``option`` is the command-line option that sets it.
    """

    key: str
    default: object
    help: str
    parse: Callable[[str], object]
    allowed: str
    choices: tuple[str, ...] | None = None
    option: str | None = None

    @property
    def description(self) -> str:
        """The help with the allowed values, as the settings sheet shows it."""
        return f"{self.help} Allowed: {self.allowed}."


def _choice_setting(key: str, default: str, help: str, choices: tuple[str, ...]) -> Setting:
    return Setting(
        key,
        default,
        help,
        _choice(choices),
        ", ".join(choices),
        choices,
        "--" + key.replace("_", "-"),
    )


def _number_setting(key: str, default: int, help: str, low: int, high: int, option: str) -> Setting:
    return Setting(key, default, help, _whole(low, high), _range_text(low, high), None, option)


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "k",
        "auto",
        "Number of segments, or auto for the recommended K.",
        _k,
        "auto or " + _range_text(2, MAX_K),
        None,
        "--k",
    ),
    _number_setting("k_min", 2, "Smallest K to consider.", 2, MAX_K, "--k-range"),
    _number_setting(
        "k_max", 10, "Largest K to consider (capped at customers - 1).", 2, MAX_K, "--k-range"
    ),
    _choice_setting("method", "kmeans", "Clustering method.", METHOD_CHOICES),
    _choice_setting(
        "metric",
        "euclidean",
        "Distance for silhouettes (and agglomerative/DBSCAN).",
        METRIC_CHOICES,
    ),
    _number_setting(
        "seed", 0, "Random seed: the same seed gives the same segments.", 0, MAX_SEED, "--seed"
    ),
    _number_setting(
        "gap_refs",
        100,
        "Reference data sets for the gap statistic (B).",
        2,
        MAX_GAP_REFS,
        "--gap-refs",
    ),
    _choice_setting(
        "gap_reference", "pca", "Null distribution of the gap statistic.", GAP_REFERENCE_CHOICES
    ),
    Setting(
        "bootstrap_resamples",
        50,
        "Bootstrap resamples for the stability of segments and of K (0 = off).",
        _bounded(0, 200, forbidden=(1,)),
        "0 (off) or a whole number from 2 to 200",
    ),
    Setting(
        "offers_sheet",
        None,
        "Sheet or Excel table holding the offers (blank: guess).",
        _text,
        "a sheet or table name",
        None,
        "--offers-sheet",
    ),
    Setting(
        "transactions_sheet",
        None,
        "Sheet or Excel table holding the transactions (blank: guess).",
        _text,
        "a sheet or table name",
        None,
        "--transactions-sheet",
    ),
)

DEFAULTS: dict[str, object] = {s.key: s.default for s in SETTINGS}
_BY_KEY = {s.key: s for s in SETTINGS}


@dataclass(frozen=True)
class Bound:
    """The range of a parameter the fronts do not expose (Python callers set them).

    ``low`` and ``high`` are inclusive unless ``open_low``/``open_high``;
    ``whole`` parameters take whole numbers only.
    """

    key: str
    low: float
    high: float
    whole: bool = True
    open_low: bool = False
    open_high: bool = False
    help: str = ""

    @property
    def allowed(self) -> str:
        if self.whole:
            return _range_text(int(self.low), int(self.high))
        left, right = ("above" if self.open_low else "from"), ("below" if self.open_high else "to")
        return f"a number {left} {self.low:g} and {right} {self.high:g}"


BOUNDS: tuple[Bound, ...] = (
    Bound("n_init", 1, 1000, help="k-means starts per fit"),
    Bound("stability_seeds", 1, 50, help="seeds over which the gap pick's stability is measured"),
    Bound(
        "silhouette_sample_size",
        2,
        20_000,
        help="customers sampled for silhouettes (the cost grows with its square)",
    ),
    Bound("damping", 0.5, 1.0, whole=False, open_high=True, help="affinity propagation"),
    Bound("preference", -1e12, 1e12, whole=False, help="affinity propagation"),
    Bound("n_neighbors", 1, 10_000, help="spectral clustering's neighbours per customer"),
    Bound("eps", 0.0, 1e6, whole=False, open_low=True, help="DBSCAN's neighbourhood radius"),
    Bound("min_samples", 1, 100_000, help="DBSCAN's core-point size"),
)
"""Bounds of `xlseg.engine.segmentation.segment`'s other parameters and the method parameters."""

_BOUND_BY_KEY = {b.key: b for b in BOUNDS}
METHOD_PARAMETERS = (
    "n_init",
    "damping",
    "preference",
    "n_neighbors",
    "linkage",
    "eps",
    "min_samples",
)
"""Keys ``method_params`` may hold (those of `xlseg.engine.methods.cluster`)."""


def _place(
    where: str, setting: Setting, places: Mapping[str, str] | None, raw_key: str, options: bool
) -> str:
    if places is not None and raw_key in places:
        return places[raw_key]
    if options and setting.option:
        return f"{where}, option {setting.option}"
    return where


def parse_settings(
    raw: Mapping[str, object],
    *,
    where: str = SETTINGS_SHEET,
    places: Mapping[str, str] | None = None,
    options: bool = False,
) -> dict[str, object]:
    """Check and convert settings given as text or values (a sheet, a form, options).

    Keys are matched case-insensitively (spaces count as underscores); blank
    values mean "use the default" and are left out. Unknown keys and invalid
    values raise `XlsegError` naming the place: ``places[key]`` when given (a
    settings sheet's cell), else ``where`` with the option that set the value
    when ``options`` (the command line), else ``where``.
    """
    parsed: dict[str, object] = {}
    for key, value in raw.items():
        name = str(key).strip().lower().replace(" ", "_")
        setting = _BY_KEY.get(name)
        if setting is None:
            place = places.get(str(key), where) if places else where
            raise XlsegError(
                f"{place}: unknown setting '{key}'; the settings are {', '.join(_BY_KEY)}"
            )
        text = "" if value is None else str(value)
        if not text.strip():
            continue
        try:
            parsed[name] = setting.parse(text)
        except ValueError:
            place = _place(where, setting, places, str(key), options)
            raise XlsegError(
                f"{place}: setting '{name}' has value '{_short(text)}'; allowed: {setting.allowed}"
            ) from None
    low, high = parsed.get("k_min"), parsed.get("k_max")
    if low is not None and high is not None and low > high:
        raise XlsegError(f"{where}: k_min ({low}) is larger than k_max ({high})")
    return parsed


def parse_setting(key: str, value: object, *, name: str | None = None) -> object:
    """One setting from a worksheet function's argument: blank gives the default.

    Raises `XlsegError` ``"<name> must be <allowed>, not '<value>'"``, the
    wording a cell shows after ``#XLSEG:``.
    """
    setting = _BY_KEY[key]
    label = name or key
    if isinstance(value, bool):  # a TRUE is not the number 1
        raise XlsegError(f"{label} must be {setting.allowed}, not '{str(value).upper()}'")
    text = "" if value is None else str(value)
    if not text.strip():
        return setting.default
    try:
        return setting.parse(text)
    except ValueError:
        allowed = f"one of {setting.allowed}" if setting.choices else setting.allowed
        raise XlsegError(f"{label} must be {allowed}, not '{_short(text)}'") from None


def check_parameters(values: Mapping[str, object]) -> None:
    """Refuse a setting or engine parameter outside its bounds, before any work starts.

    ``values`` maps keys of `SETTINGS` or `BOUNDS` (``None``: automatic) to
    Python values, as `xlseg.engine.segmentation.segment` receives them; a
    ``method_params`` mapping is checked key by key.
    """
    for key, value in values.items():
        if value is None:
            continue
        if key == "method_params":
            unknown = sorted(set(value) - set(METHOD_PARAMETERS))  # type: ignore[arg-type]
            if unknown:
                raise XlsegError(
                    f"unknown method parameter(s) {', '.join(unknown)}; the method parameters "
                    f"are {', '.join(METHOD_PARAMETERS)}"
                )
            check_parameters(value)  # type: ignore[arg-type]
        elif key == "linkage":
            if str(value).strip().lower() not in LINKAGE_CHOICES:
                raise XlsegError(
                    f"linkage must be one of {', '.join(LINKAGE_CHOICES)}, not '{value}'"
                )
        elif key in _BY_KEY:
            setting = _BY_KEY[key]
            if isinstance(value, bool) or not isinstance(value, str | numbers.Real):
                raise XlsegError(f"{key} must be {setting.allowed}, not {value!r}")
            try:
                setting.parse(str(value))
            except ValueError:
                raise XlsegError(
                    f"{key} = {_short(str(value))} is not allowed ({setting.help.rstrip('.')}); "
                    f"allowed: {setting.allowed}"
                ) from None
        elif key in _BOUND_BY_KEY:
            _check_bound(_BOUND_BY_KEY[key], value)


def _check_bound(bound: Bound, value: object) -> None:
    number = (
        float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else None
    )
    ok = number is not None and math.isfinite(number)
    if ok and bound.whole:
        ok = float(number).is_integer()
    if ok:
        ok = (bound.low < number if bound.open_low else bound.low <= number) and (
            number < bound.high if bound.open_high else number <= bound.high
        )
    if not ok:
        raise XlsegError(f"{bound.key} ({bound.help}) must be {bound.allowed}, not {value!r}")


def _short(text: str, limit: int = 60) -> str:
    """Text for a message: long values cut, so that a message stays one readable line."""
    text = text.replace("\n", " ").replace("\r", " ").replace("\t", " ")
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def merge_settings(*layers: Mapping[str, object]) -> dict[str, object]:
    """Defaults overlaid by each layer in turn; later layers win, ``None`` does not count."""
    merged = dict(DEFAULTS)
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if v is not None})
    return merged
