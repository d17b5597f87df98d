"""The job the fronts share: analyse a book (settings sheet, tables, engine), run a file.

`book_analysis` serves the command and the ribbon alike, `workbook_run` reads,
analyses and writes one saved workbook, `progress` draws the command's bars. May
import every layer below; only the fronts (`xlseg.cli`, `xlseg.ribbon`, `udfs/`)
import it.
"""
