"""The run settings shared by the command line, the ribbon and the settings sheet.

One table of settings keeps the three fronts in agreement: the ``xlseg
settings`` sheet of a workbook (two columns, ``Setting | Value``), the options
of ``xlseg run`` and the ribbon's Settings button all use these keys, these
defaults and these checks. Options given on the command line win over the
sheet, and the sheet wins over the defaults; every layer goes through the same
`parse_settings`, so a bad value is refused the same way wherever it was given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from xlseg.errors import XlsegError

SETTINGS_SHEET = "xlseg settings"

METHOD_CHOICES = ("kmeans", "affinity", "spectral", "agglomerative", "dbscan")
METRIC_CHOICES = ("euclidean", "jaccard", "cosine")
GAP_REFERENCE_CHOICES = ("pca", "uniform", "permute", "curveball")


def _whole(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        number = float(text)
        if number != int(number) or number < minimum:
            raise ValueError(text)
        return int(number)

    return parse


def _k(text: str) -> int | str:
    return "auto" if text.strip().lower() == "auto" else _whole(2)(text)


def _text(text: str) -> str | None:
    return text.strip() or None


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ValueError(text)
        return value

    return parse


@dataclass(frozen=True)
class Setting:
    """One setting: its key, default, a line of help and how its text is read.

    ``parse`` turns the text of a cell or an option into the value, raising
    ValueError when the text is not one of ``allowed`` (said in words);
    ``choices`` lists the values of a drop-down, when there is one.
    """

    key: str
    default: object
    help: str
    parse: Callable[[str], object]
    allowed: str
    choices: tuple[str, ...] | None = None


def _choice_setting(key: str, default: str, help: str, choices: tuple[str, ...]) -> Setting:
    return Setting(key, default, help, _choice(choices), ", ".join(choices), choices)


_AT_LEAST_2 = "a whole number >= 2"

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "k",
        "auto",
        "Number of segments, or auto for the recommended K.",
        _k,
        "auto or " + _AT_LEAST_2,
    ),
    Setting("k_min", 2, "Smallest K to consider.", _whole(2), _AT_LEAST_2),
    Setting(
        "k_max", 10, "Largest K to consider (capped at customers - 1).", _whole(2), _AT_LEAST_2
    ),
    _choice_setting("method", "kmeans", "Clustering method.", METHOD_CHOICES),
    _choice_setting(
        "metric",
        "euclidean",
        "Distance for silhouettes (and agglomerative/DBSCAN).",
        METRIC_CHOICES,
    ),
    Setting(
        "seed",
        0,
        "Random seed: the same seed gives the same segments.",
        _whole(0),
        "a whole number >= 0",
    ),
    Setting(
        "gap_refs", 100, "Reference data sets for the gap statistic (B).", _whole(2), _AT_LEAST_2
    ),
    _choice_setting(
        "gap_reference", "pca", "Null distribution of the gap statistic.", GAP_REFERENCE_CHOICES
    ),
    Setting(
        "offers_sheet",
        None,
        "Sheet or Excel table holding the offers (blank: guess).",
        _text,
        "a sheet or table name",
    ),
    Setting(
        "transactions_sheet",
        None,
        "Sheet or Excel table holding the transactions (blank: guess).",
        _text,
        "a sheet or table name",
    ),
)

DEFAULTS: dict[str, object] = {s.key: s.default for s in SETTINGS}
_BY_KEY = {s.key: s for s in SETTINGS}


def parse_settings(raw: Mapping[str, object], *, where: str = SETTINGS_SHEET) -> dict[str, object]:
    """Check and convert settings given as text or values (a sheet, a form, options).

    Keys are matched case-insensitively (spaces count as underscores); blank
    values mean "use the default" and are left out. Unknown keys and invalid
    values raise `XlsegError` naming ``where``, the key and what is allowed.
    """
    parsed: dict[str, object] = {}
    for key, value in raw.items():
        name = str(key).strip().lower().replace(" ", "_")
        setting = _BY_KEY.get(name)
        if setting is None:
            raise XlsegError(
                f"{where}: unknown setting '{key}'; the settings are {', '.join(_BY_KEY)}"
            )
        text = "" if value is None else str(value)
        if not text.strip():
            continue
        try:
            parsed[name] = setting.parse(text)
        except ValueError:
            raise XlsegError(
                f"{where}: setting '{name}' has value '{text}'; allowed: {setting.allowed}"
            ) from None
    low, high = parsed.get("k_min"), parsed.get("k_max")
    if low is not None and high is not None and low > high:
        raise XlsegError(f"{where}: k_min ({low}) is larger than k_max ({high})")
    return parsed


def merge_settings(*layers: Mapping[str, object]) -> dict[str, object]:
    """Defaults overlaid by each layer in turn; later layers win, ``None`` does not count."""
    merged = dict(DEFAULTS)
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if v is not None})
    return merged
