"""Segment transactions held in CSV or Parquet files (or a workbook), locally or on Spark.

The path for data beyond a worksheet: the transactions stream from their
files straight into the sparse matrix (`xlseg.files.transactions`), the offers
come from a file or a workbook, the engine runs on the matrix with its
large-data policy, and the run writes the same result sheets as a workbook
run -- into a new workbook, since there is no input workbook to add them to --
plus, when asked, every customer's label as a Parquet or CSV file. With
``engine="spark"`` the same inputs go to the Spark backend (`xlseg.spark`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xlseg.engine.segmentation import Progress, SegmentationResult
from xlseg.errors import XlsegError
from xlseg.files.labels import check_labels_path
from xlseg.files.sources import file_kind
from xlseg.run.book_analysis import ENGINE_KEYS
from xlseg.run.paths import OUTPUT_SUFFIX
from xlseg.settings import merge_settings, parse_settings
from xlseg.workbook.file_checks import check_not_open_in_excel

__all__ = ["ENGINES", "FileRunOutcome", "FileRunPaths", "plan_file_run", "run_files"]

ENGINES = ("local", "spark")


@dataclass(frozen=True)
class FileRunPaths:
    """The files of a run on table files, checked before anything is imported or read."""

    transactions: Path
    offers: Path | None
    output: Path
    labels: Path | None


@dataclass(frozen=True)
class FileRunOutcome:
    """What a run on table files did; ``book`` is the transactions' file, for summaries."""

    book: Path
    output: Path
    result: SegmentationResult
    sheets: tuple[str, ...]
    labels: Path | None = None
    replaced: tuple[str, ...] = ()
    backup: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)


def plan_file_run(
    transactions: Path, offers: Path | None, *, output: Path | None, labels: Path | None
) -> FileRunPaths:
    """Check the paths of a file run; the default output is ``<transactions>.segmented.xlsx``.

    Raises
    ------
    XlsegError
        A missing input, an input of an unknown kind, an output that is not an
        ``.xlsx`` in an existing folder or is open in Excel, a bad labels path.
    """
    transactions = Path(transactions)
    file_kind(transactions, "transactions")
    if offers is not None:
        file_kind(Path(offers), "offers")
    if output is None:
        output = transactions.with_name(f"{transactions.name.split('.')[0]}{OUTPUT_SUFFIX}.xlsx")
    output = Path(output)
    if output.suffix.lower() != ".xlsx":
        raise XlsegError(f"file '{output.name}': the report of a file run is an .xlsx workbook")
    if not output.parent.is_dir():
        raise XlsegError(f"file '{output}': the folder '{output.parent}' does not exist")
    check_not_open_in_excel(output)
    if labels is not None:
        check_labels_path(Path(labels))
    return FileRunPaths(transactions, None if offers is None else Path(offers), output, labels)


def run_files(
    transactions: Path,
    offers: Path | None = None,
    *,
    output: Path | None = None,
    labels: Path | None = None,
    options: Mapping[str, object] | None = None,
    engine: str = "local",
    spark_master: str = "local[*]",
    spark_conf: Sequence[str] = (),
    progress: Progress | None = None,
) -> FileRunOutcome:
    """Segment the transactions of ``transactions`` and write the report (and labels).

    Parameters
    ----------
    transactions : Path
        CSV file, Parquet file or folder of part files, or a workbook.
    offers : Path, optional
        The offers table in any of those forms; without it the offers are the
        ids taken, without attributes.
    output : Path, optional
        The report workbook to write (default ``<name>.segmented.xlsx`` beside
        the transactions).
    labels : Path, optional
        Also write every customer's label there (``.parquet`` or ``.csv``).
    options : mapping, optional
        Settings (keys of `xlseg.settings.SETTINGS`); ``None`` values ignored.
    engine : {"local", "spark"}
        Where the analysis runs.
    spark_master, spark_conf : str, sequence of "key=value"
        For ``engine="spark"``: the Spark master URL and extra configuration.
    progress : callable, optional
        ``progress(step, done, total)``.
    """
    if engine not in ENGINES:
        raise XlsegError(f"--engine must be one of {', '.join(ENGINES)}, not '{engine}'")
    paths = plan_file_run(transactions, offers, output=output, labels=labels)
    given = {key: value for key, value in (options or {}).items() if value is not None}
    settings = merge_settings(parse_settings(given, where="command line"))
    engine_settings = {key: settings[key] for key in ENGINE_KEYS}
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    labels_written = None
    if engine == "spark":
        from xlseg.spark.backend import segment_on_spark
        from xlseg.spark.session import spark_session

        offers_frame, offers_source = _offers(paths.offers, settings)
        source = transactions_in = paths.transactions
        if file_kind(paths.transactions, "transactions") == "workbook":
            from xlseg.files.offers import read_table

            transactions_in, source = read_table(
                paths.transactions, "transactions", sheet=settings["transactions_sheet"]
            )
        with spark_session(spark_master, spark_conf) as spark:
            result, spark_timings = segment_on_spark(
                spark,
                transactions_in,
                offers_frame,
                offers_source=offers_source,
                transactions_source=None if source is paths.transactions else source,
                labels=paths.labels,
                **engine_settings,
            )
        timings.update(spark_timings)
        labels_written = paths.labels
    else:
        result = _segment_locally(paths, settings, engine_settings, progress, timings)
    clock = time.perf_counter()
    if paths.labels is not None and labels_written is None:
        from xlseg.files.labels import labels_table, write_labels

        labels_written = write_labels(labels_table(result.customers), paths.labels)
        timings["labels"] = time.perf_counter() - clock
        clock = time.perf_counter()
    sheets = _write_report(result, paths)
    timings["report"] = time.perf_counter() - clock
    return FileRunOutcome(
        book=paths.transactions,
        output=paths.output,
        result=result,
        sheets=sheets,
        labels=labels_written,
        timings=timings,
    )


def _offers(path: Path | None, settings: Mapping[str, object]):
    """The raw offers frame and its source, or (None, None)."""
    if path is None:
        return None, None
    from xlseg.files.offers import read_table

    return read_table(path, "offers", sheet=settings["offers_sheet"])


def _segment_locally(
    paths: FileRunPaths,
    settings: Mapping[str, object],
    engine_settings: Mapping[str, object],
    progress: Progress | None,
    timings: dict[str, float],
) -> SegmentationResult:
    from xlseg.engine.segmentation import segment, segment_matrix
    from xlseg.engine.tables import read_offers_table

    clock = time.perf_counter()
    offers, offers_source = _offers(paths.offers, settings)
    if file_kind(paths.transactions, "transactions") == "workbook":
        from xlseg.files.offers import read_table

        frame, source = read_table(
            paths.transactions, "transactions", sheet=settings["transactions_sheet"]
        )
        timings["read"] = time.perf_counter() - clock
        return segment(
            offers,
            frame,
            offers_source=offers_source,
            transactions_source=source,
            progress=progress,
            **engine_settings,
        )
    from xlseg.files.transactions import read_transactions

    table = None if offers is None else read_offers_table(offers, source=offers_source)
    where = offers_source.where() if offers_source is not None else "none given"
    streamed = read_transactions(paths.transactions, table, offers_where=where)
    timings["read"] = time.perf_counter() - clock
    clock = time.perf_counter()
    result = segment_matrix(streamed.inputs, streamed.matrix, progress=progress, **engine_settings)
    timings["analysis"] = time.perf_counter() - clock
    return result


def _write_report(result: SegmentationResult, paths: FileRunPaths) -> tuple[str, ...]:
    """Render the report as a new workbook and write it through a verified temporary file."""
    from xlseg.report.build import build_report
    from xlseg.workbook.verified_write import write_verified
    from xlseg.workbook.xlsx_render import render_xlsx

    report = build_report(result)
    write_verified(render_xlsx(report), paths.output, untouched_parts={})
    return tuple(sheet.name for sheet in report.sheets)
