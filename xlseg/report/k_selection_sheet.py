"""The ``xlseg K selection`` sheet: how the number of segments K was chosen.

The criteria by K with elbow, silhouette and gap charts, the recommendation and
the gap pick's stability across seeds: the evidence to accept or overrule K by.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

from xlseg.report.layout import KR_BANDS, Stack, plain
from xlseg.report.model import ChartBlock, Series, SheetSpec
from xlseg.report.sheet_names import SHEET_PREFIX

if TYPE_CHECKING:
    from xlseg.engine.segmentation import SegmentationResult


def k_selection_sheet(result: SegmentationResult, settings: str) -> SheetSpec:
    """``xlseg K selection``: the recommendation, the criteria table by K, charts to its right."""
    selection = result.k_selection
    gap = selection.gap
    stack = Stack.headed(
        f"Choosing the number of segments K (K = {selection.k_min} to {selection.k_max})",
        [settings],
    )
    if result.k == selection.recommended_k:
        used = f"K used: {result.k} (the recommendation)."
    elif selection.recommended_k == 1 and result.k == selection.exploratory_k:
        used = (
            f"K used: {result.k}, EXPLORATORY only: no K beats random data of the same "
            f"shape, so these segments may not be real (the best-scoring K is shown)."
        )
    elif selection.recommended_k == 1:
        used = f"K used: {result.k} (fixed in the settings), EXPLORATORY: no K beats chance."
    else:
        used = f"K used: {result.k} (fixed in the settings)."
    recommended = (
        "Recommended K = 1: no segments worth the name."
        if selection.recommended_k == 1
        else f"Recommended K = {selection.recommended_k} (supported range "
        f"{selection.k_range[0]}-{selection.k_range[1]})."
    )
    stack.text(["Recommendation"], "heading")
    stack.text([f"{recommended} {used}", *selection.reasons])
    stack.text(["Structure"], "heading")
    stack.text([selection.verdict, KR_BANDS])

    criteria = selection.table
    if result.k_stability is not None:  # the bootstrap's column, NaN outside its K
        criteria = criteria.merge(result.k_stability.table, on="K", how="left")
    table = stack.table(
        "xlseg_K_selection",
        criteria,
        number_formats={
            "K": "0",
            "SSE": "0.0",
            "Silhouette": "0.000",
            "Gap": "0.000",
            "s_k": "0.000",
            "Calinski-Harabasz": "0.0",
            "Davies-Bouldin": "0.000",
            "Bootstrap ARI": "0.000",
        },
    )
    if result.k_stability is not None:
        stack.text(
            [
                "Bootstrap ARI: mean adjusted Rand index between the segments of two "
                "bootstrap resamples, on the customers both drew (1 = every resample gives "
                f"the same segments). {result.k_stability.note}"
            ]
        )

    stack.text(
        [
            f"Gap statistic: {gap.n_refs} reference data sets ({gap.reference} null). "
            "Picks of K by the rules of R's cluster::maxSE:"
        ],
        "heading",
    )
    negative = [
        int(k) for k, g in zip(selection.table["K"], selection.table["Gap"], strict=True) if g < 0
    ]
    if negative:
        listed = ", ".join(map(str, negative))
        stack.text(
            [
                f"The gap is negative at K = {listed}: below the reference, so the data's "
                "segments there are less compact than those of random data of the same shape "
                "(less structure than chance)."
            ]
        )
    picks = pd.DataFrame({"Rule": list(gap.picks), "K": [plain(k) for k in gap.picks.values()]})
    stack.table("xlseg_Gap_picks", picks, number_formats={"K": "0"})

    test = selection.structure_test
    if test is not None:
        stack.text(
            [
                f"Structure test: the data against {test.n_nulls} random matrices with the "
                f"same row and column sums ({test.null} null"
                + (f", on {test.sample_size} sampled customers" if test.sample_size else "")
                + f"); beyond chance: z > {test.z_critical:.2f} and above every random "
                "matrix (Bonferroni over the K tested, family-wise alpha "
                f"{test.alpha:g})"
            ],
            "heading",
        )
        stack.table(
            "xlseg_Structure_test",
            test.table.assign(**{"Beyond chance": test.table["Beyond chance"].map(_yes_no)}),
            number_formats={
                "K": "0",
                "Silhouette": "0.000",
                "Null silhouette": "0.000",
                "Null sd": "0.000",
                "z": "0.0",
                "p": "0.000",
                "log W": "0.000",
                "Null log W": "0.000",
                "Null log W sd": "0.000",
                "log W z": "0.0",
                "log W p": "0.000",
            },
        )
    if selection.fit_picks is not None and len(selection.fit_picks):
        stack.text(["Recommended K per fit (k-means seeds and 80 % resamples)"], "heading")
        stack.table("xlseg_K_per_fit", selection.fit_picks, number_formats={"K": "0"})

    stability = selection.stability
    if len(stability):
        stack.text(["Stability of the gap pick across random seeds"], "heading")
        stack.text([_stability_sentence(stability)])
        stack.table("xlseg_Gap_stability", stability, number_formats={"Gap pick": "0"})

    charts = Stack(row=table.anchor[0], col=len(table.columns) + 1)
    k_values = selection.table["K"].tolist()
    x_range = (min(k_values), max(k_values)) if len(k_values) > 1 else None

    def row_of(k: object) -> tuple[int, int] | None:
        if k is None or k not in k_values:
            return None
        i = k_values.index(k)
        return (i, i + 1)

    def k_chart(title: str, line: Series, label: str, k: object) -> None:
        """A curve over K, with K = ``k`` highlighted where the curve has a value there."""
        series = [line]
        if (row := row_of(k)) is not None and _finite(selection.table[line.y_column].iloc[row[0]]):
            series.append(
                Series(
                    label,
                    table.name,
                    "K",
                    line.y_column,
                    marker_only=True,
                    rows=row,
                    colour="#D62728",
                )
            )
        charts.add(
            ChartBlock(
                (charts.row, charts.col),
                "scatter",
                title,
                "K",
                line.y_column,
                tuple(series),
                x_range=x_range,
            )
        )

    k_chart(
        "Elbow: within-segment sum of squares",
        Series("SSE", table.name, "K", "SSE", colour="#1F77B4"),
        f"Knee (K = {selection.knee})",
        selection.knee,
    )
    k_chart(
        "Mean silhouette by K",
        Series("Mean silhouette", table.name, "K", "Silhouette", colour="#2CA02C"),
        f"K used (K = {result.k})",
        result.k,
    )
    rule = result.parameters.get("gap_rule")
    pick = gap.picks.get(rule) if isinstance(rule, str) else None
    k_chart(
        "Gap statistic with s_k error bars",
        Series("Gap (bars: s_k)", table.name, "K", "Gap", error_column="s_k", colour="#9467BD"),
        f"{rule} pick (K = {pick})",
        pick,
    )
    return SheetSpec(
        SHEET_PREFIX + "K selection", tuple(stack.blocks + charts.blocks), tab_colour="#ED7D31"
    )


def _stability_sentence(stability: pd.DataFrame) -> str:
    counts = stability["Gap pick"].value_counts()
    n = len(stability)
    parts = [f"K = {plain(k)} in {c} of {n}" for k, c in counts.items()]
    verdict = "stable" if len(counts) == 1 else "not stable: treat K as uncertain"
    return f"Gap pick over {n} seeds: " + "; ".join(parts) + f" ({verdict})."


def _yes_no(value: object) -> str:
    return "yes" if bool(value) else "no"


def _finite(value: object) -> bool:
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
