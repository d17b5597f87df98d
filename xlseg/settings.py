"""The run settings shared by the command line, the ribbon and the settings sheet.

One table of settings keeps the three fronts in agreement: the ``xlseg
settings`` sheet of a workbook (two columns, ``Setting | Value``), the options
of ``xlseg run`` and the ribbon's Settings button all use these keys, these
defaults and these checks. Options given on the command line win over the
sheet, and the sheet wins over the defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from xlseg.errors import XlsegError

SETTINGS_SHEET = "xlseg settings"

METHOD_CHOICES = ("kmeans", "affinity", "spectral", "agglomerative", "dbscan")
METRIC_CHOICES = ("euclidean", "jaccard", "cosine")
GAP_REFERENCE_CHOICES = ("uniform", "pca", "permute")


def _parse_k(text: str) -> int | str:
    if text.strip().lower() in ("", "auto"):
        return "auto"
    k = _parse_positive_int(text)
    if k < 2:  # one segment is no segmentation; say so naming the sheet and key
        raise ValueError(text)
    return k


def _parse_positive_int(text: str) -> int:
    number = float(text)
    if number != int(number) or number < 0:
        raise ValueError(text)
    return int(number)


def _parse_text(text: str) -> str | None:
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
    """One setting: its key, default, allowed values and a line of help."""

    key: str
    default: object
    help: str
    parse: Callable[[str], object]
    choices: tuple[str, ...] | None = None


SETTINGS: tuple[Setting, ...] = (
    Setting("k", "auto", "Number of segments, or auto for the recommended K.", _parse_k),
    Setting("k_min", 2, "Smallest K to consider.", _parse_positive_int),
    Setting("k_max", 10, "Largest K to consider (capped at customers - 1).", _parse_positive_int),
    Setting("method", "kmeans", "Clustering method.", _choice(METHOD_CHOICES), METHOD_CHOICES),
    Setting(
        "metric",
        "euclidean",
        "Distance for silhouettes (and agglomerative/DBSCAN).",
        _choice(METRIC_CHOICES),
        METRIC_CHOICES,
    ),
    Setting("seed", 0, "Random seed: the same seed gives the same segments.", _parse_positive_int),
    Setting("gap_refs", 100, "Reference data sets for the gap statistic (B).", _parse_positive_int),
    Setting(
        "gap_reference",
        "uniform",
        "Null distribution of the gap statistic.",
        _choice(GAP_REFERENCE_CHOICES),
        GAP_REFERENCE_CHOICES,
    ),
    Setting(
        "offers_sheet", None, "Sheet or Excel table holding the offers (blank: guess).", _parse_text
    ),
    Setting(
        "transactions_sheet",
        None,
        "Sheet or Excel table holding the transactions (blank: guess).",
        _parse_text,
    ),
)

DEFAULTS: dict[str, object] = {s.key: s.default for s in SETTINGS}
_BY_KEY = {s.key: s for s in SETTINGS}


def parse_settings(raw: Mapping[str, object], *, where: str = SETTINGS_SHEET) -> dict[str, object]:
    """Check and convert settings given as text (a sheet's cells or a ribbon form).

    Keys are matched case-insensitively; blank values mean "use the default"
    and are left out. Unknown keys and invalid values raise `XlsegError`
    naming ``where``, the key and what is allowed.
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
            allowed = ", ".join(setting.choices) if setting.choices else "a whole number >= 0"
            if name == "k":
                allowed = "auto or a whole number >= 2"
            raise XlsegError(
                f"{where}: setting '{name}' has value '{text}'; allowed: {allowed}"
            ) from None
    return parsed


def merge_settings(*layers: Mapping[str, object]) -> dict[str, object]:
    """Defaults overlaid by each layer in turn; later layers win, ``None`` does not count."""
    merged = dict(DEFAULTS)
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if v is not None})
    return merged
