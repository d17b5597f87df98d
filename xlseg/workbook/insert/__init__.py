"""Insert the worksheets of one workbook package into another, losslessly.

xlseg renders its result sheets into a standalone workbook (the *source*) and
then copies those sheets, part by part, into the user's workbook (the
*target*). Loading and re-saving the target with openpyxl or LibreOffice would
drop content they do not understand (text boxes, slicers, threaded comments,
custom XML, chart style parts, ...), so this module never parses the target
into an object model: every target part except the bookkeeping ones
(``[Content_Types].xml``, the workbook part, its relationships and the styles
part) is written back byte for byte, and the bookkeeping parts are edited
surgically at the text level so that namespace declarations, ``mc:Ignorable``
prefixes and anything unknown to us survive. (``xml.etree`` is used only to
*read* values; writing with it would rename prefixes.)

What the copy keeps consistent, following SpreadsheetML's rules:

- part names: every copied part gets the next free number in its folder
  (``sheet4.xml``, ``chart3.xml``, ``image2.png``); relationship targets are
  rewritten accordingly and content types are declared;
- sheets: appended after the target's sheets with ``sheetId`` = max + 1 and a
  name unique case-insensitively (a suffix `` (2)`` when a user sheet has the
  name already; references to a renamed sheet inside the copied parts follow);
- strings: shared-string cells become inline strings, so the target's
  shared-string table is neither changed nor created;
- styles: the fonts, fills, borders, number formats, cell formats and
  differential formats the new sheets use are appended (identical entries are
  reused), existing entries are never renumbered;
- tables: ids and names unique across the workbook; VML shape ids (notes,
  buttons) in blocks no other drawing uses;
- marker: each inserted sheet carries the hidden sheet-scoped defined name
  :data:`OUTPUT_MARKER` naming the run and its own ``sheetId``, and the
  workbook-scoped :data:`LISTING_NAME` lists the run's sheets
  (:mod:`xlseg.report.sheet_names`). A rerun removes the sheets on which both
  agree, the parts only they use and their defined names before appending the
  new sheets, and shifts the sheet positions stored in ``localSheetId``,
  ``activeTab`` and ``firstSheet``. Every other sheet, including an analyst's
  copy of an xlseg sheet (which carries the marker too), is kept and named in
  :attr:`InsertResult.notes`.

The target may be Transitional or Strict Open XML, with any namespace
prefixes and encodings (:mod:`~xlseg.workbook.insert.package`); its parts are
streamed, never all held in memory, and capped in size before inflating
(:mod:`~xlseg.workbook.insert.part_checks`).

``docProps/app.xml`` keeps its old list of sheet titles: it is a cache that
Excel rewrites on its next save and no reader relies on.
"""

from __future__ import annotations

from xlseg.workbook.insert.merge import InsertResult, insert_sheets
from xlseg.workbook.insert.workbook_part import output_sheet_names

__all__ = ["InsertResult", "insert_sheets", "output_sheet_names"]
