"""Live Excel through xlwings: worksheet-function ranges, live tables, the live writer.

`worksheet_functions` turns Excel ranges into engine calls for `udfs/`, `live_tables`
and `live_writer` read and write an open workbook, and `addin/` builds the add-in
and template. May import the saved-workbook layer (one table finder for both), the
report and the engine, never a front.
"""
