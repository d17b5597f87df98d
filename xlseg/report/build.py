"""Build the report of a segmentation run: its seven result sheets, in order.

Each sheet comes from a module of its own, whose builder takes the run's
`SegmentationResult` and its settings line (shown under every sheet's title)
and returns the sheet's `SheetSpec`; `build_report` puts them in order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xlseg.report.k_selection_sheet import k_selection_sheet
from xlseg.report.matrix_sheet import matrix_sheet
from xlseg.report.methods_sheet import methods_sheet
from xlseg.report.model import Report
from xlseg.report.model_sheet import model_sheet
from xlseg.report.profiles_sheet import profiles_sheet
from xlseg.report.scores_sheet import scores_sheet
from xlseg.report.segments_sheet import segments_sheet
from xlseg.report.silhouette_sheet import silhouette_sheet
from xlseg.report.summary_sheet import summary_sheet
from xlseg.report.targeting_sheet import targeting_sheet

if TYPE_CHECKING:
    from xlseg.engine.drift import Drift
    from xlseg.engine.model import SegmentModel
    from xlseg.engine.scoring import Scores
    from xlseg.engine.segmentation import SegmentationResult


def build_report(result: SegmentationResult) -> Report:
    """Describe the output sheets of a segmentation run.

    Parameters
    ----------
    result : SegmentationResult
        What `xlseg.engine.segmentation.segment` returned.

    Returns
    -------
    Report
        Nine sheets, always in this order: ``xlseg Summary``, ``xlseg
        Matrix``, ``xlseg K selection``, ``xlseg Segments``, ``xlseg
        Profiles``, ``xlseg Methods``, ``xlseg Silhouette``, ``xlseg
        Targeting`` and the hidden ``xlseg model`` (the saved model that
        ``xlseg score`` reads). Each starts with
        a title line and a line of the run's settings, so a sheet read on its
        own says where it came from.
    """
    settings = _settings_line(result)
    segments = segments_sheet(result, settings)
    customers = next(t for t in segments.tables if t.name == "xlseg_Customers")
    return Report(
        sheets=(
            summary_sheet(result, settings, customers, segments.name),
            matrix_sheet(result, settings),
            k_selection_sheet(result, settings),
            segments,
            profiles_sheet(result, settings),
            methods_sheet(result, settings),
            silhouette_sheet(result, settings),
            targeting_sheet(result, settings),
            model_sheet(result, settings),
        )
    )


def build_scores_report(
    scores: Scores, model: SegmentModel, drift: Drift | None, source: str
) -> Report:
    """Describe the output of scoring: the ``xlseg Scores`` sheet.

    ``source`` says where the transactions and the model came from; it is the
    sheet's settings line.
    """
    return Report(sheets=(scores_sheet(scores, model, drift, source),))


def _settings_line(result: SegmentationResult) -> str:
    parts = [f"{key} = {_format_setting(value)}" for key, value in result.parameters.items()]
    return "Settings: " + ", ".join(parts) if parts else "Settings: defaults"


def _format_setting(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
