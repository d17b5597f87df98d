"""A saved segmentation model: what it takes to assign a customer to a segment later.

Next month's customers must land in *this* month's segments (the ones the
analyst named and presented), not in a fresh clustering whose segment 2 is
last month's segment 4. A `SegmentModel` keeps everything the assignment
needs: the method and its parameters, the offers in matrix column order with
their attributes, one centre per segment, the distance the centres are
compared with, the segment numbers and names, the training date, the xlseg
version and a checksum.

The centre of a segment is the mean of its members' rows (the take-up rate of
every offer). For k-means that is the algorithm's own centroid, so assigning a
training customer to the nearest centre gives back its k-means segment. The
other methods have no centroids; their model uses the same rule -- nearest
member mean, under the distance the method was fitted with -- which puts most,
not all, training customers back into their own segment (how many is stored as
``agreement``).

Two forms, one content
----------------------
The model is stored as plain table rows (`model_sections`, read back by
`model_from_rows`: what the hidden ``xlseg model`` sheet holds) and as JSON
(`model_to_json`, `model_from_json`). Both carry the same checksum, a SHA-256
of a canonical JSON text of the content in which numbers are written with
`SIGNIFICANT_DIGITS` significant digits. Centres are rounded to that many
digits when the model is made, so the checksum and the scores stay the same
after Excel, LibreOffice (which writes 15 digits) or a JSON file has stored
them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from numbers import Integral, Real
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from xlseg.engine.tables import normalise_offer_id
from xlseg.errors import XlsegError

if TYPE_CHECKING:
    from xlseg.engine.segmentation import SegmentationResult

FORMAT = "xlseg segmentation model"
"""First value of the model's table and the JSON ``format`` field."""

FORMAT_VERSION = 1
"""Layout of the table and JSON; bumped when a field is added or changes meaning."""

SIGNIFICANT_DIGITS = 12
"""Digits kept of every centre coordinate (and used by the checksum)."""

RADIUS_QUANTILE = 0.95
"""A segment's radius: this quantile of its training members' distances to its centre."""

DISTANCES = ("euclidean", "cosine", "jaccard", "manhattan")

#: Methods whose fit compares customers by Euclidean distance whatever the metric setting.
_EUCLIDEAN_METHODS = ("kmeans", "affinity", "spectral")

#: Section titles of the table form, in order; the reader finds the sections by them.
SECTION_MODEL = "Model"
SECTION_SEGMENTS = "Segments"
SECTION_OFFERS = "Offers"
SECTION_CENTRES = "Centres"
SEGMENT_COLUMNS = ("Segment", "Name", "Customers", "Radius")
MAX_SEGMENTS = 1000
MAX_OFFERS = 100_000

Scalar = str | int | float | bool | None


@dataclass(frozen=True, eq=False)
class SegmentModel:
    """Everything needed to assign customers to saved segments.

    Attributes
    ----------
    method : str
        Clustering method that made the segments.
    parameters : dict
        The run's effective settings (K, seed, metric...), JSON-compatible.
    distance : {"euclidean", "cosine", "jaccard", "manhattan"}
        The distance the method was fitted with, used to find the nearest centre.
    rule : str
        The assignment rule in words.
    offer_ids : tuple
        Offer ids (int or str) in matrix column order.
    attributes : tuple of str
        Offer attribute column names.
    attribute_values : tuple of tuple
        One row of attribute values per offer (str, int, float, bool or None).
    segments : tuple of int
        1-based segment numbers, as the report shows them.
    names : tuple of str
        Segment names.
    sizes : tuple of int
        Training customers per segment.
    radius : tuple of float
        `RADIUS_QUANTILE` of each segment's training distances to its centre.
    centres : ndarray of shape (n_segments, n_offers)
        Member means, rounded to `SIGNIFICANT_DIGITS`.
    agreement : float
        Share of training customers whose nearest centre is their own segment's.
    trained : str
        ISO 8601 UTC time of training.
    version : str
        xlseg version that made the model.
    checksum : str
        SHA-256 (hex) of the canonical content.
    """

    method: str
    parameters: dict[str, object]
    distance: str
    rule: str
    offer_ids: tuple[int | str, ...]
    attributes: tuple[str, ...]
    attribute_values: tuple[tuple[Scalar, ...], ...]
    segments: tuple[int, ...]
    names: tuple[str, ...]
    sizes: tuple[int, ...]
    radius: tuple[float, ...]
    centres: np.ndarray
    agreement: float
    trained: str
    version: str
    checksum: str = ""

    @property
    def offers(self) -> pd.DataFrame:
        """The offers table: index ``Offer`` (ids in column order), one column per attribute."""
        frame = pd.DataFrame(
            list(self.attribute_values), columns=list(self.attributes), dtype=object
        )
        frame.index = pd.Index(list(self.offer_ids), name="Offer", dtype=object)
        return frame.infer_objects()

    def name_of(self, segment: int) -> str:
        """Name of the 1-based segment number."""
        return self.names[self.segments.index(segment)]

    def canonical(self) -> dict[str, object]:
        """The content as a JSON-compatible dict, numbers in their canonical form."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "xlseg_version": self.version,
            "method": self.method,
            "parameters": _canonical_json(self.parameters),
            "distance": self.distance,
            "rule": self.rule,
            "trained": self.trained,
            "agreement": _number(self.agreement),
            "offers": {
                "ids": [_scalar(i) for i in self.offer_ids],
                "attributes": list(self.attributes),
                "values": [[_scalar(v) for v in row] for row in self.attribute_values],
            },
            "segments": [
                {"segment": s, "name": n, "customers": c, "radius": _number(r)}
                for s, n, c, r in zip(
                    self.segments, self.names, self.sizes, self.radius, strict=True
                )
            ],
            "centres": [[_number(v) for v in row] for row in self.centres.tolist()],
        }


def xlseg_version() -> str:
    """The installed xlseg's version (``0+unknown`` when run from an uninstalled copy)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("xlseg")
    except PackageNotFoundError:
        return "0+unknown"


def model_distance(method: str, metric: str) -> str:
    """The distance a method's segments were fitted with.

    k-means, affinity propagation (negative squared Euclidean similarity) and
    spectral clustering (Euclidean neighbour graph) are Euclidean whatever the
    metric setting; agglomerative clustering and DBSCAN use the metric.
    """
    return "euclidean" if method in _EUCLIDEAN_METHODS else metric


def build_model(result: SegmentationResult, *, trained: dt.datetime | None = None) -> SegmentModel:
    """The model of a segmentation run.

    Parameters
    ----------
    result : SegmentationResult
        What `xlseg.engine.segmentation.segment` returned.
    trained : datetime, optional
        Training time (default now, UTC).
    """
    clustering = result.clustering
    labels = clustering.labels
    n_segments = clustering.n_clusters
    if n_segments < 1:
        raise XlsegError("the segmentation has no segments, so there is no model to save")
    distance = model_distance(clustering.method, clustering.metric)
    centres = round_significant(clustering.centres[:n_segments])
    X = result.matrix.values
    names = {p.segment: p.name for p in result.profiles.segments}
    members = labels >= 0
    own = np.full(labels.size, np.nan)
    nearest = np.full(labels.size, -1)
    if members.any():
        d = centre_distances(X[members], centres, distance)
        own[members] = d[np.arange(d.shape[0]), labels[members]]
        nearest[members] = np.argmin(d, axis=1)
    radius = tuple(
        float(np.quantile(own[labels == s], RADIUS_QUANTILE)) if np.any(labels == s) else 0.0
        for s in range(n_segments)
    )
    offers = result.inputs.offers
    rule = (
        "nearest centre (the k-means centroid) by euclidean distance"
        if clustering.method == "kmeans"
        else f"nearest centre (mean of the segment's members) by {distance} distance"
    )
    when = (trained or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    model = SegmentModel(
        method=clustering.method,
        parameters=_canonical_json({str(k): v for k, v in result.parameters.items()}),
        distance=distance,
        rule=rule,
        offer_ids=tuple(_scalar(i) for i in offers.index),
        attributes=tuple(str(c) for c in offers.columns),
        attribute_values=tuple(
            tuple(_scalar(v) for v in row) for row in offers.itertuples(index=False, name=None)
        ),
        segments=tuple(range(1, n_segments + 1)),
        names=tuple(names.get(s, f"Segment {s + 1}") for s in range(n_segments)),
        sizes=tuple(int(v) for v in np.bincount(labels[members], minlength=n_segments)),
        radius=tuple(float(_number(r)) for r in radius),
        centres=centres,
        agreement=float(np.mean(nearest[members] == labels[members])) if members.any() else 1.0,
        trained=when.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        version=xlseg_version(),
    )
    return replace(model, checksum=model_checksum(model))


def round_significant(values: np.ndarray, digits: int = SIGNIFICANT_DIGITS) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits (as text would keep them)."""
    return np.array(
        [[float(f"{v:.{digits}g}") for v in row] for row in np.asarray(values, float)],
        dtype=float,
    ).reshape(np.shape(values))


def centre_distances(X, centres: np.ndarray, distance: str) -> np.ndarray:
    """Distance of every customer row of ``X`` to every centre, customers x segments.

    Built from the sparse product ``X @ centres.T`` and row sums, so 100,000
    customers x 1,000 offers need no dense copy of ``X``. For 0/1 rows ``x``
    and a centre ``c`` of take-up rates in [0, 1]: Euclidean
    ``sqrt(|x|^2 + |c|^2 - 2 x.c)``; cosine ``1 - x.c / (|x| |c|)``;
    Manhattan ``sum |x - c| = |x|_1 + |c|_1 - 2 x.c``; Jaccard in its weighted
    (Ruzicka) form ``1 - sum min(x, c) / sum max(x, c) = 1 - x.c / (|x|_1 +
    |c|_1 - x.c)``, which is the ordinary Jaccard distance when ``c`` is 0/1.
    """
    X = sp.csr_matrix(X, dtype=np.float64)
    # One memory layout whatever the model was read from: the sums run in the same
    # order, so the same model gives bit-identical distances from a sheet or JSON.
    centres = np.ascontiguousarray(centres, dtype=np.float64)
    dots = np.asarray(X @ centres.T)
    x_sum = np.asarray(X.sum(axis=1)).ravel()[:, None]  # |x|_1 = |x|^2 for 0/1 rows
    c_sq = np.einsum("ij,ij->i", centres, centres)[None, :]
    c_sum = centres.sum(axis=1)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        if distance == "euclidean":
            x_sq = np.asarray(X.multiply(X).sum(axis=1)).ravel()[:, None]
            return np.sqrt(np.maximum(x_sq + c_sq - 2.0 * dots, 0.0))
        if distance == "cosine":
            x_sq = np.asarray(X.multiply(X).sum(axis=1)).ravel()[:, None]
            norms = np.sqrt(x_sq * c_sq)
            return np.clip(1.0 - np.where(norms > 0, dots / norms, 0.0), 0.0, 2.0)
        if distance == "manhattan":
            return np.maximum(x_sum + c_sum - 2.0 * dots, 0.0)
        if distance == "jaccard":
            union = x_sum + c_sum - dots
            return np.where(union > 0, 1.0 - dots / union, 0.0)
    raise XlsegError(f"unknown distance '{distance}'; choose one of {', '.join(DISTANCES)}")


# --------------------------------------------------------------------------- checksum


def model_checksum(model: SegmentModel) -> str:
    """SHA-256 (hex) of the canonical JSON text of the model's content."""
    text = json.dumps(model.canonical(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _number(value: float) -> int | float | None:
    """A number as the checksum sees it: `SIGNIFICANT_DIGITS` digits, whole numbers as int."""
    value = float(value)
    if not math.isfinite(value):
        return None
    value = float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _scalar(value: object) -> Scalar:
    """A cell value in canonical form: blanks None, whole numbers int, dates ISO text."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, Real):
        return _number(float(value)) if not isinstance(value, Integral) else int(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    text = str(value)
    return text if text != "" else None


def _canonical_json(value: object) -> object:
    """``value`` made JSON-compatible: str keys, tuples as lists, scalars canonical."""
    if isinstance(value, dict):
        return {
            str(k): _canonical_json(v) for k, v in sorted(value.items(), key=lambda i: str(i[0]))
        }
    if isinstance(value, list | tuple):
        return [_canonical_json(v) for v in value]
    return _scalar(value)


# --------------------------------------------------------------------------- table form


def model_sections(model: SegmentModel) -> list[tuple[str, tuple[str, ...], list[tuple]]]:
    """The model as titled tables ``(title, header, rows)``: what the model sheet holds.

    ``Model`` (``Field | Value``), ``Segments`` (`SEGMENT_COLUMNS`),
    ``Offers`` (``Offer`` and the attributes) and ``Centres`` (``Offer`` and
    one column per segment). Every value is a plain cell value.
    """
    fields = [
        ("format", FORMAT),
        ("format_version", FORMAT_VERSION),
        ("xlseg_version", model.version),
        ("method", model.method),
        ("parameters", json.dumps(model.parameters, sort_keys=True, ensure_ascii=False)),
        ("distance", model.distance),
        ("rule", model.rule),
        ("trained", model.trained),
        ("agreement", model.agreement),
        ("segments", len(model.segments)),
        ("offers", len(model.offer_ids)),
        ("checksum", model.checksum),
    ]
    segments = [
        (s, n, c, r)
        for s, n, c, r in zip(model.segments, model.names, model.sizes, model.radius, strict=True)
    ]
    offer_header = ("Offer", *_unique(model.attributes, {"offer"}))
    offers = [(i, *row) for i, row in zip(model.offer_ids, model.attribute_values, strict=True)]
    centre_header = ("Offer", *(f"Segment {s}" for s in model.segments))
    centres = [(i, *row) for i, row in zip(model.offer_ids, model.centres.T.tolist(), strict=True)]
    return [
        (SECTION_MODEL, ("Field", "Value"), fields),
        (SECTION_SEGMENTS, SEGMENT_COLUMNS, segments),
        (SECTION_OFFERS, offer_header, offers),
        (SECTION_CENTRES, centre_header, centres),
    ]


def _unique(headers: Sequence[str], taken: set[str]) -> list[str]:
    """Headers made unique case-insensitively against ``taken`` (an attribute called Offer)."""
    out = []
    for header in headers:
        candidate, n = header, 2
        while candidate.casefold() in taken:
            candidate, n = f"{header} ({n})", n + 1
        taken.add(candidate.casefold())
        out.append(candidate)
    return out


def model_from_rows(rows: Sequence[Sequence[object]], where: str) -> SegmentModel:
    """Read a model back from the cells of its table form (a sheet or a range).

    Parameters
    ----------
    rows : sequence of sequences
        The cells, row by row, as a reader or Excel hands them over (floats
        for numbers, ``None`` or ``""`` for blanks).
    where : str
        What to name in messages, e.g. ``file 'a.xlsx', sheet 'xlseg model'``.

    Raises
    ------
    XlsegError
        One line naming ``where``: not a model, a missing section, a model of
        another xlseg version or format, a checksum that does not match.
    """
    grid = [[None if _blank(v) else v for v in row] for row in rows]
    sections = _find_sections(grid, where)
    fields = {
        str(row[0]).strip(): (row[1] if len(row) > 1 else None) for row in sections["Model"][1]
    }
    if fields.get("format") != FORMAT:
        raise XlsegError(
            f"{where}: this is not an xlseg model (its first field must be 'format' = '{FORMAT}')"
        )
    check_compatible(str(fields.get("xlseg_version", "")), fields.get("format_version"), where)
    try:
        parameters = json.loads(str(fields.get("parameters") or "{}"))
        header, segment_rows = sections[SECTION_SEGMENTS]
        offer_header, offer_rows = sections[SECTION_OFFERS]
        centre_header, centre_rows = sections[SECTION_CENTRES]
        n_attributes = len(offer_header) - 1
        offer_ids = tuple(normalise_offer_id(row[0]) for row in offer_rows)
        centre_ids = tuple(normalise_offer_id(row[0]) for row in centre_rows)
        n_segments = len(segment_rows)
        centres = np.array(
            [[float(v) for v in _padded(row, n_segments + 1)[1:]] for row in centre_rows],
            dtype=float,
        )
        centres = np.ascontiguousarray(centres.T.reshape(n_segments, len(centre_rows)))
        model = SegmentModel(
            method=str(fields["method"]),
            parameters=parameters,
            distance=str(fields["distance"]),
            rule=str(fields["rule"]),
            offer_ids=offer_ids,
            attributes=tuple(str(h) for h in offer_header[1:]),
            attribute_values=tuple(
                tuple(_scalar(v) for v in _padded(row, n_attributes + 1)[1:]) for row in offer_rows
            ),
            segments=tuple(int(float(row[0])) for row in segment_rows),
            names=tuple(str(row[1]) for row in segment_rows),
            sizes=tuple(int(float(row[2])) for row in segment_rows),
            radius=tuple(float(row[3]) for row in segment_rows),
            centres=centres,
            agreement=float(fields["agreement"]),
            trained=str(fields["trained"]),
            version=str(fields["xlseg_version"]),
            checksum=str(fields.get("checksum") or ""),
        )
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise XlsegError(f"{where}: the model's table is damaged ({_reason(error)})") from None
    if centre_ids != offer_ids:
        raise XlsegError(f"{where}: the Centres table lists other offers than the Offers table")
    return verified(model, where)


def _reason(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"field {error} is missing"
    return str(error) or type(error).__name__


def _blank(value: object) -> bool:
    return (
        value is None
        or (isinstance(value, str) and not value.strip())
        or (isinstance(value, float) and math.isnan(value))
    )


def _padded(row: Sequence[object], width: int) -> list[object]:
    return list(row[:width]) + [None] * (width - len(row))


def _find_sections(grid: list[list[object]], where: str) -> dict[str, tuple[tuple, list[list]]]:
    """Each titled section's header and rows (rows end at the first blank first cell)."""
    titles = (SECTION_MODEL, SECTION_SEGMENTS, SECTION_OFFERS, SECTION_CENTRES)
    found: dict[str, tuple[tuple, list[list]]] = {}
    i = 0
    while i < len(grid):
        row = grid[i]
        title = row[0] if row and len(set(map(str, filter(None, row)))) == 1 else None
        if isinstance(title, str) and title.strip() in titles and title.strip() not in found:
            j = i + 1
            while j < len(grid) and not any(v is not None for v in grid[j]):
                j += 1
            if j >= len(grid):
                break
            header = tuple(str(v) for v in grid[j] if v is not None)
            body = []
            j += 1
            while j < len(grid) and grid[j] and grid[j][0] is not None:
                body.append(grid[j])
                j += 1
            found[title.strip()] = (header, body)
            i = j
        else:
            i += 1
    missing = [t for t in titles if t not in found]
    if SECTION_MODEL in missing:
        raise XlsegError(f"{where}: this is not an xlseg model (no 'Model' table found)")
    if missing:
        raise XlsegError(f"{where}: the model's table is damaged (no {', '.join(missing)} table)")
    return found


def check_compatible(version: str, format_version: object, where: str) -> None:
    """Refuse a model of another format or of another xlseg release (major.minor).

    Raises
    ------
    XlsegError
        Naming the model's version and this one.
    """
    mine = xlseg_version()
    if _release(version) != _release(mine) or _as_int(format_version) != FORMAT_VERSION:
        raise XlsegError(
            f"{where}: the model was saved by xlseg {version or '(unknown)'} and this is xlseg "
            f"{mine}, which reads models of xlseg {'.'.join(_release(mine))}.x only; run "
            "'xlseg run' on the training workbook again to save a model for this version"
        )


def _release(version: str) -> tuple[str, ...]:
    return tuple(version.split("+")[0].split(".")[:2])


def _as_int(value: object) -> int | None:
    try:
        return int(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def verified(model: SegmentModel, where: str) -> SegmentModel:
    """``model`` after checking its checksum and its shape.

    Raises
    ------
    XlsegError
        A checksum that does not match (the model was edited or damaged), or
        sizes out of bounds.
    """
    k, p = len(model.segments), len(model.offer_ids)
    if not 1 <= k <= MAX_SEGMENTS or not 1 <= p <= MAX_OFFERS:
        raise XlsegError(
            f"{where}: the model has {k} segments and {p} offers; xlseg reads models of 1 to "
            f"{MAX_SEGMENTS} segments and 1 to {MAX_OFFERS:,} offers"
        )
    if model.centres.shape != (k, p) or not np.all(np.isfinite(model.centres)):
        raise XlsegError(f"{where}: the model's centres are damaged (empty or non-numeric cells)")
    if model.distance not in DISTANCES:
        raise XlsegError(f"{where}: unknown distance '{model.distance}' in the model")
    if model.checksum != model_checksum(model):
        raise XlsegError(
            f"{where}: the model's checksum does not match its contents, so it was edited or "
            "damaged; run 'xlseg run' on the training workbook again to save a fresh model"
        )
    return model


# --------------------------------------------------------------------------- JSON


def model_to_json(model: SegmentModel) -> str:
    """The model as a JSON document (the canonical content plus its checksum)."""
    document = model.canonical()
    document["checksum"] = model.checksum
    return json.dumps(document, indent=1, ensure_ascii=False)


def model_from_json(text: str, where: str) -> SegmentModel:
    """Read a model from `model_to_json`'s text; the same checks as `model_from_rows`."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise XlsegError(f"{where}: not a JSON model ({error})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise XlsegError(f"{where}: this is not an xlseg model (no 'format': '{FORMAT}')")
    check_compatible(str(document.get("xlseg_version", "")), document.get("format_version"), where)
    try:
        offers = document["offers"]
        segments = document["segments"]
        model = SegmentModel(
            method=str(document["method"]),
            parameters=dict(document["parameters"]),
            distance=str(document["distance"]),
            rule=str(document["rule"]),
            offer_ids=tuple(normalise_offer_id(i) for i in offers["ids"]),
            attributes=tuple(str(a) for a in offers["attributes"]),
            attribute_values=tuple(tuple(_scalar(v) for v in row) for row in offers["values"]),
            segments=tuple(int(s["segment"]) for s in segments),
            names=tuple(str(s["name"]) for s in segments),
            sizes=tuple(int(s["customers"]) for s in segments),
            radius=tuple(float(s["radius"]) for s in segments),
            centres=np.array(document["centres"], dtype=float).reshape(
                len(segments), len(offers["ids"])
            ),
            agreement=float(document["agreement"]),
            trained=str(document["trained"]),
            version=str(document["xlseg_version"]),
            checksum=str(document.get("checksum") or ""),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise XlsegError(f"{where}: the JSON model is damaged ({_reason(error)})") from None
    return verified(model, where)
