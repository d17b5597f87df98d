"""Score a saved workbook against a saved model, and export a model as JSON.

The headless path of ``xlseg score`` and ``xlseg model export``. The model is
read and checked (version, checksum) before the transactions are even read,
so a bad model costs nothing and writes nothing; the scores sheet then goes
through the same report, rendering, insertion and verified write as a
segmentation run. Scoring replaces only an earlier ``xlseg Scores`` sheet:
the segmentation's sheets and its model stay.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from xlseg.engine.drift import Drift, drift
from xlseg.engine.model import SegmentModel, model_to_json
from xlseg.engine.scoring import Scores, score
from xlseg.report.build import build_scores_report
from xlseg.report.model import Report
from xlseg.report.scores_sheet import SCORES_SHEET
from xlseg.run.paths import plan_paths
from xlseg.run.score_paths import plan_export, plan_score
from xlseg.settings import SETTINGS_SHEET, merge_settings, parse_settings
from xlseg.workbook.insert import insert_sheets
from xlseg.workbook.model_reading import read_model, read_previous_segmentation
from xlseg.workbook.reading import BookReader, FileBookReader, read_tables
from xlseg.workbook.verified_write import backup_path, write_verified
from xlseg.workbook.xlsx_render import render_xlsx


@dataclass(frozen=True)
class ScoreOutcome:
    """What one scoring did."""

    book: Path
    model_path: Path
    output: Path
    model: SegmentModel
    scores: Scores
    drift: Drift | None
    previous: str | None
    sheets: tuple[str, ...]
    replaced: tuple[str, ...]
    backup: Path | None


def score_workbook(
    book: Path,
    model_path: Path,
    *,
    output: Path | None = None,
    options: Mapping[str, object] | None = None,
) -> ScoreOutcome:
    """Assign the customers of ``book`` to the segments of the model in ``model_path``.

    Parameters
    ----------
    book : Path
        Workbook holding the transactions to score.
    model_path : Path
        A workbook with an ``xlseg model`` sheet, or a JSON export.
    output : Path, optional
        Where to write; default `xlseg.run.score_paths.default_score_output`.
    options : mapping, optional
        ``transactions_sheet`` (wins over the book's settings sheet).

    Raises
    ------
    XlsegError
        A bad model (another version, a damaged checksum, no offer shared
        with the transactions) or bad transactions, before anything is written.
    """
    destination = plan_score(book, model_path, output)
    paths = plan_paths(Path(book), output=destination)
    with paths.lock():
        model = read_model(Path(model_path))
        scored = score_book(
            FileBookReader(paths.book),
            model,
            model_name=Path(model_path).name,
            earlier=[
                (path.name, read_previous_segmentation(path))
                for path in dict.fromkeys([paths.book, Path(model_path)])
            ],
            options=options,
        )
        scores, change, previous_name, report = (
            scored.scores,
            scored.drift,
            scored.previous,
            scored.report,
        )
        data, inserted = insert_sheets(
            paths.target, render_xlsx(report, compress=False), replace_names=[SCORES_SHEET]
        )
        replaces = paths.real_destination.exists()
        written = write_verified(
            data,
            paths.destination,
            untouched_parts=inserted.untouched_parts,
            backup=True,
            new_sheets=inserted.sheets,
        )
    return ScoreOutcome(
        book=Path(book),
        model_path=Path(model_path),
        output=written,
        model=model,
        scores=scores,
        drift=change,
        previous=previous_name,
        sheets=inserted.sheets,
        replaced=inserted.replaced,
        backup=backup_path(paths.real_destination) if replaces else None,
    )


@dataclass(frozen=True, eq=False)
class ScoredBook:
    """The scores of one workbook, the drift against its earlier segmentation, the report."""

    scores: Scores
    drift: Drift | None
    previous: str | None
    report: Report


def score_book(
    reader: BookReader,
    model: SegmentModel,
    *,
    model_name: str,
    earlier: Sequence[tuple[str, tuple[str, pd.DataFrame] | None]] = (),
    options: Mapping[str, object] | None = None,
) -> ScoredBook:
    """Score the transactions of a workbook (saved or open in Excel) against ``model``.

    Parameters
    ----------
    reader : BookReader
        The workbook.
    model : SegmentModel
        The saved segments.
    model_name : str
        Where the model came from (a file name), for the sheet and messages.
    earlier : sequence
        ``(file name, read_previous_segmentation(...))`` candidates for drift,
        first match wins: the scored book's own, then the model book's.
    options : mapping, optional
        ``transactions_sheet`` (wins over the book's settings sheet).
    """
    from_sheet = parse_settings(
        reader.settings(), where=f"file '{reader.file}', sheet '{SETTINGS_SHEET}'"
    )
    given = {k: v for k, v in (options or {}).items() if v is not None}
    settings = merge_settings(from_sheet, parse_settings(given, where="command line"))
    tables = read_tables(
        reader, transactions_sheet=settings["transactions_sheet"], require_offers=False
    )
    where = f"the model from '{model_name}'"
    scores = score(model, tables.transactions, source=tables.transactions_source, model_where=where)
    previous_name, change = None, None
    for file, found in earlier:
        if found is not None and _same_segments(found[1], model):
            previous_name = f"file '{file}', sheet '{found[0]}'"
            change = drift(found[1], scores, model)
            break
    source = f"Scored: {tables.transactions_source.where()}; model from '{model_name}'" + (
        f"; earlier segmentation from {previous_name}" if previous_name else ""
    )
    report = build_scores_report(scores, model, change, source)
    return ScoredBook(scores, change, previous_name, report)


def _same_segments(previous: pd.DataFrame, model: SegmentModel) -> bool:
    """Whether an earlier segmentation used the model's segments (same numbers, same names).

    One made by another model numbers other segments; comparing those numbers
    would be meaningless, so drift is then not shown.
    """
    known = dict(zip(model.segments, model.names, strict=True))
    pairs = previous.dropna(subset=["Segment"])
    return all(
        known.get(int(s)) == str(n)
        for s, n in zip(pairs["Segment"], pairs["Segment name"], strict=True)
    )


def export_model(book: Path, output: Path) -> Path:
    """Write the model saved in ``book`` (a workbook or JSON) to ``output`` as JSON.

    The model is read and verified first; the JSON goes to a temporary file in
    the output's folder and replaces ``output`` only when complete.

    Raises
    ------
    XlsegError
        A bad model or book, a missing output folder; nothing is written then.
    """
    output = plan_export(output)
    text = model_to_json(read_model(Path(book)))
    handle, temporary = tempfile.mkstemp(prefix=".xlseg-", suffix=".json", dir=output.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return output


def score_summary(outcome: ScoreOutcome) -> dict[str, object]:
    """The machine-readable summary of a scoring (``--json``)."""
    table = outcome.scores.table
    counts = table["Segment"].value_counts()
    model = outcome.model
    return {
        "book": str(outcome.book),
        "model": str(outcome.model_path),
        "output": str(outcome.output),
        "checksum": model.checksum,
        "customers": len(table),
        "no_basis": len(table) - outcome.scores.n_scored,
        "far": outcome.scores.n_far,
        "segments": [
            {"segment": s, "name": n, "customers": int(counts.get(s, 0))}
            for s, n in zip(model.segments, model.names, strict=True)
        ],
        "unknown_offers": [str(i) for i in outcome.scores.unknown_offers],
        "drift": None
        if outcome.drift is None
        else {
            "previous": outcome.previous,
            "moved": outcome.drift.moved,
            "common": outcome.drift.common,
            "sentences": list(outcome.drift.sentences),
        },
        "notes": list(outcome.scores.notes),
        "sheets": list(outcome.sheets),
        "replaced": list(outcome.replaced),
    }


def score_lines(outcome: ScoreOutcome) -> list[str]:
    """The short human summary of a scoring, one line each."""
    summary = score_summary(outcome)
    lines = [
        f"{outcome.book} -> {outcome.output}",
        f"  model: {outcome.model_path} ({outcome.model.method}, "
        f"{len(outcome.model.segments)} segments, trained {outcome.model.trained})",
        f"  {summary['customers']:,} customers scored; {summary['no_basis']:,} no basis; "
        f"{summary['far']:,} far from every centre",
    ]
    for segment in summary["segments"]:
        lines.append(
            f"  Segment {segment['segment']:<3} {segment['name']:<32} "
            f"{segment['customers']:>7} customers"
        )
    lines += [f"  {note}" for note in outcome.scores.notes]
    if outcome.drift is not None:
        lines.append(f"  drift against {outcome.previous}:")
        lines += [f"    {sentence}" for sentence in outcome.drift.sentences]
    lines.append(f"  sheets written: {', '.join(outcome.sheets)}")
    if outcome.replaced:
        lines.append(f"  replaced earlier xlseg sheets: {', '.join(outcome.replaced)}")
    return lines
