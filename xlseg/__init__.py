"""xlseg: customer segmentation for Excel workbooks.

``from xlseg import segment`` is the short form of
`xlseg.engine.segmentation.segment`; it is imported on first use, so that
``import xlseg`` (and the command's start) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xlseg.errors import XlsegError

if TYPE_CHECKING:
    from xlseg.engine.segmentation import segment

__all__ = ["XlsegError", "segment"]


def __getattr__(name: str) -> object:
    if name == "segment":
        from xlseg.engine.segmentation import segment

        return segment
    raise AttributeError(f"module 'xlseg' has no attribute {name!r}")
