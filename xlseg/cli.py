"""The ``xlseg`` command: segment saved workbooks with no Excel present.

Thin by design: parse arguments, call `xlseg.run.workbook_run.run_workbook` (or
the add-in builder), print a summary. One function per subcommand (``_run``,
``_batch``, ...), each registered by its own ``_add_*_command``. Exit codes
(:data:`EXIT_CODES`, listed in ``--help``): 0 done, 2 bad input or usage (one
plain line naming file, sheet, row and column), 1 unexpected error or a batch
with failures. Paths, file kinds and locks are checked before the engine is
imported, so a refusal takes a fraction of a second.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

from xlseg.errors import XlsegError
from xlseg.run.progress import ProgressBars
from xlseg.settings import (
    GAP_REFERENCE_CHOICES,
    METHOD_CHOICES,
    METRIC_CHOICES,
    parse_settings,
)

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

EXIT_CODES = """exit codes:
  0  done
  1  an unexpected error (set XLSEG_DEBUG=1 to see the traceback), or a batch
     in which at least one workbook failed
  2  bad input or usage: one line naming the file, sheet, row and column;
     nothing was written"""


class _UsageError(Exception):
    """A command line argparse rejects, raised instead of exiting so ``--json`` can answer."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(self, message)


class _Version(argparse.Action):
    """``--version``: looks the version up only when asked, to keep the start fast."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print xlseg's version and exit")

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("xlseg")
        except PackageNotFoundError:
            number = "(not installed)"
        print(f"xlseg {number}")
        parser.exit()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (the console script exits with it)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as error:
        error.parser.print_usage(sys.stderr)
        print(f"{error.parser.prog}: error: {error}", file=sys.stderr)
        if "--json" in argv:
            _print_json({"error": str(error), "exit_code": EXIT_BAD_INPUT, "kind": "usage"})
        return EXIT_BAD_INPUT
    bars = ProgressBars(enabled=False if args.quiet or args.json else None)
    try:
        return args.handler(args, bars)
    except XlsegError as error:
        return _fail(args, str(error), EXIT_BAD_INPUT, "bad input", "error")
    except Exception as error:  # noqa: BLE001 - the command's last line of defence
        if os.environ.get("XLSEG_DEBUG"):
            traceback.print_exc()
        message = f"{type(error).__name__}: {error}"
        return _fail(args, message, EXIT_FAILED, "unexpected", "unexpected error")
    finally:
        bars.close()


def _fail(args: argparse.Namespace, message: str, code: int, kind: str, label: str) -> int:
    """One line on stderr, and with ``--json`` the same as an object on stdout."""
    hint = " (set XLSEG_DEBUG=1 to see the traceback)" if code == EXIT_FAILED else ""
    print(f"xlseg: {label}: {message}{hint}", file=sys.stderr)
    if args.json:
        _print_json({"error": message, "exit_code": code, "kind": kind})
    return code


def _print_json(payload: object) -> None:
    print(json.dumps(payload, indent=2, ensure_ascii=False))


def _run(args: argparse.Namespace, bars: ProgressBars) -> int:
    if args.transactions or args.offers or args.engine == "spark":
        return _run_files(args, bars)
    if args.book is None:
        raise XlsegError("give a workbook, or the tables with --transactions (and --offers)")
    if args.labels is not None:
        from xlseg.files.labels import check_labels_path

        check_labels_path(args.labels)
    from xlseg.run.paths import plan_paths

    # Bad paths and locks are refused here, before the engine's imports take their seconds.
    paths = plan_paths(
        args.book,
        output=args.output,
        in_place=args.in_place,
        into=args.into,
        ignore_lock=args.ignore_lock,
    )
    with paths.lock():
        from xlseg.run.workbook_run import run_workbook

        outcome = run_workbook(
            args.book,
            output=args.output,
            in_place=args.in_place,
            into=args.into,
            options=_engine_options(args),
            progress=bars,
            ignore_lock=args.ignore_lock,
        )
    if args.labels is not None:
        from xlseg.files.labels import labels_table, write_labels

        write_labels(labels_table(outcome.result.customers), args.labels)
    _report([outcome], [], args)
    _print_labels(args)
    return EXIT_OK


def _batch_books(paths: Sequence[Path]) -> list[Path]:
    """The workbooks named, a folder standing for the workbooks directly in it.

    Within a folder, xlseg's own outputs and backups, Office lock files and
    hidden files are left out, so that a rerun does not segment its outputs.
    """
    from xlseg.run.paths import OUTPUT_SUFFIX
    from xlseg.workbook.file_checks import WORKBOOK_SUFFIXES

    books: list[Path] = []
    for path in paths:
        if not path.is_dir():
            books.append(path)
            continue
        found = sorted(
            entry
            for entry in path.iterdir()
            if entry.suffix.lower() in WORKBOOK_SUFFIXES
            and entry.is_file()
            and not entry.name.startswith(("~$", "."))
            and not entry.stem.endswith(OUTPUT_SUFFIX)
            and not re.search(r"\.bak\d*$", entry.stem)
        )
        if not found:
            raise XlsegError(f"folder '{path}' holds no .xlsx or .xlsm workbook")
        books.extend(found)
    return books


def _run_files(args: argparse.Namespace, bars: ProgressBars) -> int:
    """``xlseg run --transactions ... [--offers ...]``: tables in CSV, Parquet or workbooks."""
    if args.in_place or args.into is not None:
        raise XlsegError("--in-place and --into write into a workbook; a file run writes -o")
    transactions = args.transactions or args.book
    if transactions is None:
        raise XlsegError("give the transactions with --transactions (or a workbook)")
    offers = args.offers or (args.book if args.book != transactions else None)
    if offers is None and transactions.suffix.lower() in (".xlsx", ".xlsm"):
        offers = transactions
    from xlseg.run.file_run import plan_file_run

    plan_file_run(transactions, offers, output=args.output, labels=args.labels)
    if args.engine == "spark":
        from xlseg.spark.session import check_spark

        check_spark()
    from xlseg.run.file_run import run_files

    outcome = run_files(
        transactions,
        offers,
        output=args.output,
        labels=args.labels,
        options=_engine_options(args),
        engine=args.engine,
        spark_master=args.spark_master,
        spark_conf=args.spark_conf or (),
        progress=bars,
    )
    _report([outcome], [], args)
    _print_labels(args)
    return EXIT_OK


def _print_labels(args: argparse.Namespace) -> None:
    if args.labels is not None and not args.json and not args.quiet:
        print(f"  labels of every customer: {args.labels}")


def _batch(args: argparse.Namespace, bars: ProgressBars) -> int:
    from xlseg.run.paths import default_output

    books = _batch_books(args.books)
    if args.output_dir:
        try:
            args.output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise XlsegError(
                f"cannot create the output folder '{args.output_dir}': {exc.strerror}"
            ) from exc
    from xlseg.run.workbook_run import run_workbook

    options = _engine_options(args)  # a bad option is the command's error, not each book's
    outcomes, failures = [], []
    written: dict[Path, Path] = {}
    for done, book in enumerate(books):
        bars("batch", done, len(books))
        failure = None
        output = args.output_dir / default_output(book).name if args.output_dir else None
        # Two books of the same name from different folders must not overwrite
        # each other's output in DIR (nor the same book given twice).
        planned = (output or default_output(book)).resolve()
        if planned in written:
            failure = (
                f"its output '{planned.name}' would overwrite the output of "
                f"'{written[planned]}' written earlier in this batch; skipped"
            )
        else:
            try:
                outcomes.append(
                    run_workbook(
                        book,
                        output=output,
                        options=options,
                        progress=bars,
                        ignore_lock=args.ignore_lock,
                    )
                )
                written[planned] = book
            except XlsegError as error:
                failure = str(error)
            except Exception as error:  # noqa: BLE001 - one bad workbook must not stop the batch
                failure = f"unexpected error: {type(error).__name__}: {error}"
        if failure is not None:
            failures.append((book, failure))
            # As it happens, on stderr, whatever stdout holds (a table, JSON, nothing).
            print(f"xlseg: error: {book}: {failure}", file=sys.stderr)
    bars("batch", len(books), len(books))
    _report(outcomes, failures, args)
    return EXIT_FAILED if failures else EXIT_OK


def _demo(args: argparse.Namespace, bars: ProgressBars) -> int:
    from xlseg.workbook.file_checks import check_not_open_in_excel
    from xlseg.workbook.locks import run_lock
    from xlseg.workbook.verified_write import check_replaceable

    path = args.output
    if path.suffix.lower() != ".xlsx":
        raise XlsegError(f"file '{path}': the demo workbook must be an .xlsx file")
    check_not_open_in_excel(path, ignore_lock=args.ignore_lock)
    options = _engine_options(args)  # checked before the sample is made
    with run_lock(check_replaceable(path)):
        from xlseg.engine.sample import make_sample
        from xlseg.run.workbook_run import run_workbook
        from xlseg.workbook.sample_book import write_sample_workbook

        sample = make_sample(seed=0 if args.seed is None else args.seed)
        with tempfile.TemporaryDirectory() as folder:
            book = write_sample_workbook(sample, Path(folder) / path.name)
            outcome = run_workbook(
                book,
                output=path,
                options=options,
                progress=bars,
                ignore_lock=args.ignore_lock,
            )
    # The sample now lives in the output; the temporary copy analysed is gone.
    outcome = dataclasses.replace(outcome, book=path)
    _report([outcome], [], args, source=f"the embedded sample ({len(sample.membership)} customers)")
    return EXIT_OK


def _addin_build(args: argparse.Namespace, bars: ProgressBars) -> int:
    from xlseg.excel.addin.build import build_addin

    args.output_dir.mkdir(parents=True, exist_ok=True)
    for path in build_addin(args.output_dir):
        print(f"wrote {path}")
    return EXIT_OK


def _addin_install(args: argparse.Namespace, bars: ProgressBars) -> int:
    from xlseg.excel.addin.build import install_addin

    print(install_addin(args.addin))
    return EXIT_OK


def _score(args: argparse.Namespace, bars: ProgressBars) -> int:
    from xlseg.run.score_paths import plan_score

    plan_score(args.book, args.model, args.output)  # bad paths refused before the imports
    from xlseg.run.scoring_run import score_lines, score_summary, score_workbook

    options = {"transactions_sheet": args.transactions_sheet}
    outcome = score_workbook(args.book, args.model, output=args.output, options=options)
    if args.json:
        print(json.dumps(score_summary(outcome), indent=2, ensure_ascii=False))
    else:
        print("\n".join(score_lines(outcome)))
    return EXIT_OK


def _model_export(args: argparse.Namespace, bars: ProgressBars) -> int:
    from xlseg.run.score_paths import plan_export

    plan_export(args.output)
    from xlseg.run.scoring_run import export_model

    print(f"wrote {export_model(args.book, args.output)}")
    return EXIT_OK


def _engine_options(args: argparse.Namespace) -> dict[str, object]:
    """Only the options the user gave: the workbook's settings sheet fills the rest."""
    options = {
        "k": args.k,
        "method": args.method,
        "metric": args.metric,
        "seed": args.seed,
        "gap_refs": args.gap_refs,
        "gap_reference": args.gap_reference,
        "bootstrap_resamples": args.bootstrap_resamples,
        "offers_sheet": getattr(args, "offers_sheet", None),
        "transactions_sheet": getattr(args, "transactions_sheet", None),
    }
    if args.k_range is not None:
        options["k_min"], options["k_max"] = args.k_range
    given = {key: value for key, value in options.items() if value is not None}
    parse_settings(given, where="command line", options=True)  # bounds, before any work
    return given


def _summary(outcome) -> dict[str, object]:
    from xlseg.report.summary_sheet import summary_lines

    result = outcome.result
    flags = {q.segment: q.flag for q in result.segment_quality}
    return {
        "book": str(outcome.book),
        "output": str(outcome.output),
        "k": result.k,
        "recommended_k": result.k_selection.recommended_k,
        "structure": result.k_selection.structure,
        "method": result.clustering.method,
        "segments": [
            {
                "segment": p.segment + 1 if p.segment >= 0 else None,
                "name": p.name,
                "customers": p.size,
                "share": round(p.share, 4),
                "quality": flags.get(p.segment),
            }
            for p in result.profiles.segments
        ],
        "summary": summary_lines(result),
        "sheets": list(outcome.sheets),
        "replaced": list(outcome.replaced),
        "notes": list(result.notes) + list(outcome.notes),
    }


def _report(outcomes, failures, args: argparse.Namespace, source: str | None = None) -> None:
    """The summary on stdout: JSON with ``--json``, nothing with ``--quiet``, else text.

    ``source`` names what was analysed when it is not ``outcome.book`` (the demo).
    """
    if args.json:
        summaries = [_summary(o) for o in outcomes]
        if isinstance(getattr(args, "books", None), list):
            payload = {
                "done": summaries,
                "failed": [{"book": str(b), "error": e} for b, e in failures],
            }
        else:
            payload = summaries[0]
        _print_json(payload)
        return
    if args.quiet:
        return
    for outcome in outcomes:
        _print_outcome(outcome, source)
    if isinstance(getattr(args, "books", None), list):
        _print_batch_table(outcomes, failures)


def _print_outcome(outcome, source: str | None = None) -> None:
    result = outcome.result
    selection = result.k_selection
    from xlseg.report.summary_sheet import summary_lines  # the result has loaded pandas

    print(f"{source or outcome.book} -> {outcome.output}")
    print(
        f"  K = {result.k} ({result.clustering.method}); recommended K = "
        f"{selection.recommended_k}; structure: {selection.structure}"
    )
    for line in summary_lines(result):  # the Summary sheet's own words
        print(f"  {line}")
    for profile in result.profiles.segments:
        label = f"Segment {profile.segment + 1}" if profile.segment >= 0 else "Noise"
        print(f"  {label:<11} {profile.name:<32} {profile.size:>7} customers ({profile.share:.0%})")
    print(f"  sheets written: {', '.join(outcome.sheets)}")
    if outcome.replaced:
        print(f"  replaced earlier xlseg sheets: {', '.join(outcome.replaced)}")
    if outcome.backup is not None:
        print(f"  backup of the file it replaced: {outcome.backup}")
    for note in outcome.notes:
        print(f"  note: {note}")


def _print_batch_table(outcomes, failures) -> None:
    rows = [(str(o.book), "done", f"K={o.result.k}", str(o.output)) for o in outcomes]
    rows += [(str(book), "FAILED", "", error) for book, error in failures]
    widths = [max(len(r[i]) for r in rows) for i in range(3)] if rows else [0, 0, 0]
    print()
    print(f"{len(outcomes)} done, {len(failures)} failed")
    for row in rows:
        print(
            "  "
            + "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True))
            + "  "
            + row[3]
        )


def _k_value(text: str) -> int | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"K must be 'auto' or a whole number, not '{text}'"
        ) from None


def _k_range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    try:
        return (int(low), int(high)) if sep else (int(low), int(low))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--k-range takes two whole numbers like 2-10, not '{text}'"
        ) from None


def _add_engine_options(parser: argparse.ArgumentParser, *, sheets: bool = True) -> None:
    group = parser.add_argument_group("analysis options (default: the workbook's settings sheet)")
    group.add_argument("--k", type=_k_value, help="number of segments, or auto (default auto)")
    group.add_argument("--k-range", type=_k_range, metavar="MIN-MAX", help="K range (default 2-10)")
    group.add_argument(
        "--method", choices=METHOD_CHOICES, help="clustering method (default kmeans)"
    )
    group.add_argument("--metric", choices=METRIC_CHOICES, help="silhouette/distance metric")
    group.add_argument("--seed", type=int, help="random seed (default 0)")
    group.add_argument("--gap-refs", type=int, metavar="B", help="gap reference sets (default 100)")
    group.add_argument("--gap-reference", choices=GAP_REFERENCE_CHOICES, help="gap null")
    group.add_argument(
        "--bootstrap-resamples",
        type=int,
        metavar="B",
        help="bootstrap resamples for segment stability, 0 = off (default 50, at most 200)",
    )
    if sheets:
        group.add_argument("--offers-sheet", metavar="S", help="sheet or table with the offers")
        group.add_argument(
            "--transactions-sheet", metavar="S", help="sheet or table with the transactions"
        )


def _add_file_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("tables in files, labels, Spark")
    group.add_argument(
        "--transactions",
        type=Path,
        metavar="PATH",
        help="transactions as CSV, Parquet (file or folder of parts) or workbook",
    )
    group.add_argument("--offers", type=Path, metavar="PATH", help="offers, in any of those")
    group.add_argument(
        "--labels", type=Path, metavar="FILE", help="also write every customer's segment here"
    )
    group.add_argument("--engine", choices=("local", "spark"), default="local", help="where to run")
    group.add_argument(
        "--spark-master", default="local[*]", metavar="URL", help="Spark master (local[*])"
    )
    group.add_argument(
        "--spark-conf",
        action="append",
        metavar="KEY=VALUE",
        help="Spark configuration, repeatable",
    )


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print a JSON summary (or error object) on stdout"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing but errors (and --json)"
    )


def _add_lock_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ignore-lock",
        action="store_true",
        help="write although an Excel (~$name) or LibreOffice (.~lock.name#) lock file is "
        "present: only for a lock left behind by a crash",
    )


def _subparser(commands, name: str, help_text: str) -> argparse.ArgumentParser:
    return commands.add_parser(
        name,
        help=help_text,
        description=help_text[0].upper() + help_text[1:] + ".",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _add_demo_command(commands) -> None:
    demo = _subparser(commands, "demo", "write the sample workbook and segment it")
    demo.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("xlseg-demo.xlsx"),
        help="demo workbook to write (default xlseg-demo.xlsx)",
    )
    _add_engine_options(demo, sheets=False)
    _add_output_options(demo)
    _add_lock_option(demo)
    demo.set_defaults(handler=_demo)


def _add_run_command(commands) -> None:
    run = _subparser(commands, "run", "segment one workbook")
    run.add_argument(
        "book",
        type=Path,
        nargs="?",
        help="workbook (.xlsx or .xlsm) with offers and transactions",
    )
    where = run.add_mutually_exclusive_group()
    where.add_argument(
        "-o", "--output", type=Path, help="output workbook (default <name>.segmented.xlsx)"
    )
    where.add_argument("--in-place", action="store_true", help="write into BOOK, keeping a backup")
    run.add_argument(
        "--into",
        type=Path,
        metavar="OTHER",
        help="write the result sheets into this other existing workbook",
    )
    _add_file_options(run)
    _add_engine_options(run)
    _add_output_options(run)
    _add_lock_option(run)
    run.set_defaults(handler=_run)


def _add_batch_command(commands) -> None:
    batch = _subparser(commands, "batch", "segment many workbooks; bad ones are skipped")
    batch.add_argument(
        "books",
        type=Path,
        nargs="+",
        metavar="BOOK_OR_FOLDER",
        help="workbooks, or folders standing for the workbooks in them",
    )
    batch.add_argument("-o", "--output-dir", type=Path, help="folder for the outputs")
    _add_engine_options(batch)
    _add_output_options(batch)
    _add_lock_option(batch)
    batch.set_defaults(handler=_batch)


def _add_score_command(commands) -> None:
    score = _subparser(commands, "score", "assign customers to a saved model's segments")
    score.add_argument("book", type=Path, help="workbook (.xlsx or .xlsm) with transactions")
    score.add_argument(
        "--model", type=Path, required=True, help="workbook with an 'xlseg model' sheet, or .json"
    )
    score.add_argument(
        "-o", "--output", type=Path, help="output workbook (default <name>.scored.xlsx)"
    )
    score.add_argument(
        "--transactions-sheet", metavar="S", help="sheet or table with the transactions"
    )
    _add_output_options(score)
    _add_lock_option(score)
    score.set_defaults(handler=_score)


def _add_model_command(commands) -> None:
    model = _subparser(commands, "model", "work with a saved segmentation model")
    model_commands = model.add_subparsers(dest="model_command", required=True)
    export = _subparser(model_commands, "export", "write a workbook's saved model as JSON")
    export.add_argument("book", type=Path, help="workbook with an 'xlseg model' sheet")
    export.add_argument("-o", "--output", type=Path, required=True, help="model.json to write")
    export.set_defaults(handler=_model_export, quiet=True, json=False)


def _add_addin_command(commands) -> None:
    addin = _subparser(commands, "addin", "build or install the Excel add-in")
    addin_commands = addin.add_subparsers(dest="addin_command", required=True)
    build = addin_commands.add_parser("build", help="build xlseg.xlam and the template workbook")
    build.add_argument("-o", "--output-dir", type=Path, default=Path("."), help="folder")
    build.set_defaults(handler=_addin_build, quiet=True, json=False)
    install = addin_commands.add_parser("install", help="copy the add-in where Excel loads it")
    install.add_argument("--addin", type=Path, help="built add-in (default: build one)")
    install.set_defaults(handler=_addin_install, quiet=True, json=False)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="xlseg",
        description="Customer segmentation for Excel workbooks, without Excel.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_demo_command(commands)
    _add_run_command(commands)
    _add_batch_command(commands)
    _add_score_command(commands)
    _add_model_command(commands)
    _add_addin_command(commands)
    return parser
