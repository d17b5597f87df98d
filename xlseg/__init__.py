"""xlseg: customer segmentation for Excel workbooks."""

from xlseg.errors import XlsegError

__all__ = ["XlsegError"]
