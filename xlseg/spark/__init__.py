"""The Spark backend: the engine's analysis on pyspark DataFrames and ``pyspark.ml``.

A second engine beside `xlseg.engine`, at its layer: it may use the engine's
code (validation, gap statistic, profiles' wording), never the report, the
writers or the run pipeline. pyspark is optional (``pip install 'xlseg[spark]'``)
and is imported only inside the functions that use it.
"""
