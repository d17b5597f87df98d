"""The ``xlseg`` command: segment saved workbooks with no Excel present.

Thin by design: parse arguments, call `xlseg.run.workbook_run.run_workbook` (or
the add-in builder), print a summary. Exit codes: 0 done, 2 bad input or
usage (one plain line naming file, sheet, row and column), 1 unexpected error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

from xlseg.errors import XlsegError
from xlseg.run.progress import ProgressBars
from xlseg.settings import GAP_REFERENCE_CHOICES, METHOD_CHOICES, METRIC_CHOICES

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (the console script exits with it)."""
    parser = _parser()
    args = parser.parse_args(argv)
    bars = ProgressBars(enabled=False if args.quiet or args.json else None)
    try:
        return args.handler(args, bars)
    except XlsegError as error:
        print(f"xlseg: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as error:  # noqa: BLE001 - the command's last line of defence
        if os.environ.get("XLSEG_DEBUG"):
            traceback.print_exc()
        print(
            f"xlseg: unexpected error: {type(error).__name__}: {error} "
            "(set XLSEG_DEBUG=1 to see the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    finally:
        bars.close()


def _run(args: argparse.Namespace, bars: ProgressBars) -> int:
    if args.transactions or args.offers or args.engine == "spark":
        return _run_files(args, bars)
    if args.book is None:
        raise XlsegError("give a workbook, or the tables with --transactions (and --offers)")
    if args.labels is not None:
        from xlseg.files.labels import check_labels_path

        check_labels_path(args.labels)
    from xlseg.run.paths import plan_paths

    # Bad paths are refused here, before the engine's imports take their seconds.
    plan_paths(args.book, output=args.output, in_place=args.in_place, into=args.into)
    from xlseg.run.workbook_run import run_workbook

    outcome = run_workbook(
        args.book,
        output=args.output,
        in_place=args.in_place,
        into=args.into,
        options=_engine_options(args),
        progress=bars,
    )
    if args.labels is not None:
        from xlseg.files.labels import labels_table, write_labels

        write_labels(labels_table(outcome.result.customers), args.labels)
    _report([outcome], [], args)
    _print_labels(args)
    return EXIT_OK


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
    if args.labels is not None and not args.json:
        print(f"  labels of every customer: {args.labels}")


def _batch(args: argparse.Namespace, bars: ProgressBars) -> int:
    from xlseg.run.paths import default_output
    from xlseg.run.workbook_run import run_workbook

    if args.output_dir:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    outcomes, failures = [], []
    written: dict[Path, Path] = {}
    for done, book in enumerate(args.books):
        bars("batch", done, len(args.books))
        output = args.output_dir / default_output(book).name if args.output_dir else None
        # Two books of the same name from different folders must not overwrite
        # each other's output in DIR (nor the same book given twice).
        planned = (output or default_output(book)).resolve()
        if planned in written:
            failures.append(
                (
                    book,
                    f"its output '{planned.name}' would overwrite the output of "
                    f"'{written[planned]}' written earlier in this batch; skipped",
                )
            )
            continue
        try:
            outcomes.append(
                run_workbook(book, output=output, options=_engine_options(args), progress=bars)
            )
            written[planned] = book
        except XlsegError as error:
            failures.append((book, str(error)))
        except Exception as error:  # noqa: BLE001 - one bad workbook must not stop the batch
            failures.append((book, f"unexpected error: {type(error).__name__}: {error}"))
    bars("batch", len(args.books), len(args.books))
    _report(outcomes, failures, args)
    return EXIT_FAILED if failures else EXIT_OK


def _demo(args: argparse.Namespace, bars: ProgressBars) -> int:
    from xlseg.engine.sample import make_sample
    from xlseg.run.workbook_run import run_workbook
    from xlseg.workbook.sample_book import write_sample_workbook

    path = args.output
    if path.suffix.lower() != ".xlsx":
        raise XlsegError(f"file '{path}': the demo workbook must be an .xlsx file")
    sample = make_sample(seed=0 if args.seed is None else args.seed)
    with tempfile.TemporaryDirectory() as folder:
        book = write_sample_workbook(sample, Path(folder) / path.name)
        outcome = run_workbook(book, output=path, options=_engine_options(args), progress=bars)
    # The sample now lives in the output; the temporary copy analysed is gone.
    _report([dataclasses.replace(outcome, book=path)], [], args)
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


def _engine_options(args: argparse.Namespace) -> dict[str, object]:
    """Only the options the user gave: the workbook's settings sheet fills the rest."""
    options = {
        "k": args.k,
        "method": args.method,
        "metric": args.metric,
        "seed": args.seed,
        "gap_refs": args.gap_refs,
        "gap_reference": args.gap_reference,
        "offers_sheet": getattr(args, "offers_sheet", None),
        "transactions_sheet": getattr(args, "transactions_sheet", None),
    }
    if args.k_range is not None:
        options["k_min"], options["k_max"] = args.k_range
    return {key: value for key, value in options.items() if value is not None}


def _summary(outcome) -> dict[str, object]:
    result = outcome.result
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
            }
            for p in result.profiles.segments
        ],
        "sheets": list(outcome.sheets),
        "replaced": list(outcome.replaced),
        "notes": list(result.notes),
    }


def _report(outcomes, failures, args: argparse.Namespace) -> None:
    if args.json:
        summaries = [_summary(o) for o in outcomes]
        if isinstance(getattr(args, "books", None), list):
            payload = {
                "done": summaries,
                "failed": [{"book": str(b), "error": e} for b, e in failures],
            }
        else:
            payload = summaries[0]
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    for outcome in outcomes:
        _print_outcome(outcome)
    if isinstance(getattr(args, "books", None), list):
        _print_batch_table(outcomes, failures)


def _print_outcome(outcome) -> None:
    result = outcome.result
    selection = result.k_selection
    print(f"{outcome.book} -> {outcome.output}")
    print(
        f"  K = {result.k} ({result.clustering.method}); recommended K = "
        f"{selection.recommended_k}; structure: {selection.structure}"
    )
    print(f"  {selection.verdict}")
    for profile in result.profiles.segments:
        label = f"Segment {profile.segment + 1}" if profile.segment >= 0 else "Noise"
        print(f"  {label:<11} {profile.name:<32} {profile.size:>7} customers ({profile.share:.0%})")
    print(f"  sheets written: {', '.join(outcome.sheets)}")
    if outcome.replaced:
        print(f"  replaced earlier xlseg sheets: {', '.join(outcome.replaced)}")
    if outcome.backup is not None:
        print(f"  backup of the original: {outcome.backup}")


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
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xlseg",
        description="Customer segmentation for Excel workbooks, without Excel.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="write the sample workbook and segment it")
    demo.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("xlseg-demo.xlsx"),
        help="demo workbook to write (default xlseg-demo.xlsx)",
    )
    _add_engine_options(demo, sheets=False)
    _add_output_options(demo)
    demo.set_defaults(handler=_demo)

    run = commands.add_parser("run", help="segment one workbook")
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
    run.set_defaults(handler=_run)

    batch = commands.add_parser("batch", help="segment many workbooks; bad ones are skipped")
    batch.add_argument("books", type=Path, nargs="+", help="workbooks")
    batch.add_argument("-o", "--output-dir", type=Path, help="folder for the outputs")
    _add_engine_options(batch)
    _add_output_options(batch)
    batch.set_defaults(handler=_batch)

    addin = commands.add_parser("addin", help="build or install the Excel add-in")
    addin_commands = addin.add_subparsers(dest="addin_command", required=True)
    build = addin_commands.add_parser("build", help="build xlseg.xlam and the template workbook")
    build.add_argument("-o", "--output-dir", type=Path, default=Path("."), help="folder")
    build.set_defaults(handler=_addin_build, quiet=True, json=False)
    install = addin_commands.add_parser("install", help="copy the add-in where Excel loads it")
    install.add_argument("--addin", type=Path, help="built add-in (default: build one)")
    install.set_defaults(handler=_addin_install, quiet=True, json=False)
    return parser
