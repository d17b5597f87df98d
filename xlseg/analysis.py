"""Old home of `segment`, kept for one release: use ``from xlseg import segment``.

The names are those of `xlseg.engine.segmentation`; this module goes away in 0.3.
"""

from xlseg.engine.segmentation import (
    CUSTOMER_COLUMNS,
    Progress,
    SegmentationResult,
    segment,
)

__all__ = ["CUSTOMER_COLUMNS", "Progress", "SegmentationResult", "segment"]
