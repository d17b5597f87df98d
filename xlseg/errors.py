"""The one exception type for input a spreadsheet user can fix."""

from __future__ import annotations


class XlsegError(Exception):
    """Bad input, described so that an analyst can find and fix it.

    The message names the file, sheet or table, the row as Excel shows it and
    the column, whichever of these are known. Fronts print it as one line
    (command line), return it as ``#XLSEG: ...`` (worksheet functions) or show
    it in a message box (ribbon); none of them shows a traceback for it.
    """
