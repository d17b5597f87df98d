"""Saved workbooks: reading the two tables, rendering a report, inserting it losslessly.

`reading` finds the tables in a file, `xlsx_render` draws a report with XlsxWriter,
`insert` copies the new sheets into the user's package part by part, and
`verified_write` replaces a file only after checking the result. May import the
report and the engine, never live Excel or a front.
"""
