"""Tables in saved files other than workbooks: CSV and Parquet in, labels out.

The layer of `xlseg.workbook` (saved files), using the standard library and
pyarrow only: transactions are streamed in batches straight into the engine's
sparse matrix, so ten million rows never become a data frame.
"""
