"""The engine: tables -> validated inputs -> matrix -> K selection -> clustering -> profiles.

Pure Python on data frames and sparse matrices: no files, no Excel. Modules here
import only each other, `xlseg.errors` and `xlseg.settings`; `segmentation.segment`
is the one entry point every front calls.
"""
