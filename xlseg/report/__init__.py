"""The report: a neutral description of the result sheets (blocks, tables, charts, pictures).

`model` holds the description, `build.build_report` turns a segmentation result into
it, one module per sheet. It may import the engine, never a writer or a front, so
the file writer and the live writer render one and the same report.
"""
