"""The add-in and template, built from committed sources without Excel.

`build` assembles `xlseg.xlam` and `xlseg_template.xlsm`, `vba_project` writes the
VBA project's compound file and `ovba` its MS-OVBA compression.
"""
