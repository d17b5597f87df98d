"""Inserting the sheets of one package into another: the order of the steps.

Each step lives with what it edits (package, workbook part, styles, copied
parts); this module runs them in the order their results are needed, since
later steps depend on the names and numbers earlier ones chose.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from xlseg.errors import XlsegError
from xlseg.workbook.insert.package import (
    CONTENT_TYPES,
    REL_NS,
    STYLES_CT,
    TABLE_CT,
    Package,
    PartCopier,
    Rel,
    content_types_xml,
    free_rel_id,
    orphaned_parts,
    write_zip,
)
from xlseg.workbook.insert.renaming import (
    PartRewriter,
    inline_strings,
    remaining_tables,
    remaining_vml_blocks,
    table_renames,
)
from xlseg.workbook.insert.strict import strict_uri, to_strict
from xlseg.workbook.insert.styles import StyleMerger
from xlseg.workbook.insert.workbook_part import Workbook, WorkbookEdit, new_sheet_names
from xlseg.workbook.insert.xml_text import part_text


@dataclass(frozen=True)
class InsertResult:
    """What :func:`insert_sheets` did.

    Attributes
    ----------
    sheets : tuple of str
        Names the inserted sheets got in the target, in tab order.
    replaced : tuple of str
        Names of xlseg's earlier sheets that were removed before the insertion.
    untouched_parts : dict of str to str
        Part name -> sha256 (hex) of every part of the target that the result
        holds byte for byte; :func:`xlseg.workbook.verified_write.write_verified` checks
        them again on the written file.
    notes : tuple of str
        What the analyst should know: sheets that carry xlseg's marker but are
        not xlseg's (copies) and were kept, and what was tolerated in the
        target package (duplicate zip entries or content-type declarations).
    """

    sheets: tuple[str, ...]
    replaced: tuple[str, ...]
    untouched_parts: dict[str, str]
    notes: tuple[str, ...] = ()


def insert_sheets(
    target: bytes | Path,
    source: bytes | Path,
    *,
    replace_previous: bool = True,
    replace_names: Collection[str] | None = None,
) -> tuple[bytes, InsertResult]:
    """Insert every sheet of ``source`` at the end of ``target``.

    Parameters
    ----------
    target : bytes or Path
        The user's workbook (.xlsx or .xlsm, as saved by Excel). Only its
        content types, workbook part, workbook relationships and styles part
        are edited; every other part is copied byte for byte.
    source : bytes or Path
        A standalone workbook holding the sheets to insert, e.g. rendered by
        XlsxWriter. Its worksheets (or chart sheets) are copied with their
        drawings, charts, images, tables, notes and the workbook-level
        formats and sheet-scoped defined names they use.
    replace_previous : bool, default True
        Remove the sheets an earlier run wrote into the target first, with the
        parts only they use. Which sheets those are is decided by their marker
        and the workbook's listing together (:mod:`xlseg.report.sheet_names`),
        so an analyst's copy of an xlseg sheet is kept (and named in the notes).
    replace_names : collection of str, optional
        Remove only the marked sheets of these names (case-insensitive, a
        `` (2)`` suffix ignored), so that scoring a workbook replaces its
        earlier scores and keeps the segmentation's sheets and model.

    Returns
    -------
    data : bytes
        The new package.
    result : InsertResult
        The names the sheets got, the sheets replaced and the hashes of the
        target's parts that stayed byte-identical.

    Raises
    ------
    XlsegError
        If either workbook is not a readable .xlsx/.xlsm package (binary,
        encrypted, legacy .xls, damaged), or the source holds no sheet.
    """
    tgt = Package(target, "target")
    src = Package(source, "source")
    return _Merge(tgt, src, replace_previous, _run_id(tgt, src), replace_names).run()


def _run_id(target: Package, source: Package) -> str:
    """An id for this insertion, fixed by its inputs (same inputs, same bytes out).

    It differs between workbooks and between runs on the same workbook (the
    workbook part changes with every run), which is all the marker needs.
    """
    digest = hashlib.sha256()
    for package in (target, source):
        for part in (package.workbook, CONTENT_TYPES):
            digest.update(hashlib.sha256(package.parts[part]).digest())
    for info in source.infos:
        digest.update(f"{info.filename}:{info.CRC}".encode())
    return digest.hexdigest()[:16]


class _Merge:
    def __init__(
        self,
        tgt: Package,
        src: Package,
        replace_previous: bool,
        run_id: str,
        replace_names: Collection[str] | None = None,
    ) -> None:
        self.tgt, self.src, self.run_id = tgt, src, run_id
        self.book = Workbook(tgt)
        self.src_book = Workbook(src)
        if not self.src_book.sheets:
            raise XlsegError(f"{src.label} holds no sheet to insert")
        self.edit = WorkbookEdit(tgt, self.book, self.src_book, replace_previous, replace_names)
        skip = {(tgt.workbook, rid) for rid in self.edit.removed_rids}
        self.removed_parts = orphaned_parts(tgt, skip)
        wb_rels = self.edit.rels
        styles = [r for r in wb_rels.values() if r.kind == "styles" and r.part]
        self.styles_rel: Rel | None = None
        if styles and styles[0].part in tgt.parts:
            self.styles_part = styles[0].part
        else:
            # A workbook without a styles part (some generators write none, or
            # point at one they did not write) gets one: the new sheets need it.
            self.styles_part = styles[0].part if styles else _free_styles_name(tgt)
            if not styles:
                rid = free_rel_id(set(wb_rels))
                target = self.styles_part.removeprefix(posixpath.dirname(tgt.workbook) + "/")
                kind = REL_NS + "/styles"
                kind = strict_uri(kind) if self.book.strict else kind
                self.styles_rel = Rel(rid, kind, target, False, self.styles_part)
        self.copier = PartCopier(src, {p.lower() for p in tgt.parts if p not in self.removed_parts})

    def run(self) -> tuple[bytes, InsertResult]:
        tgt, src = self.tgt, self.src
        new_names, renames = new_sheet_names(self.src_book.sheets, self.edit.kept, src.label)
        styles = self._styles()
        strings_rel = [r.part for r in src.rels(src.workbook) if r.kind == "sharedstrings"]
        strings = inline_strings(src.parts.get(strings_rel[0]) if strings_rel else None)

        names = (n.name for n in self.book.names)
        max_table_id, table_names = remaining_tables(tgt, self.removed_parts, names)
        vml_blocks = remaining_vml_blocks(tgt, self.removed_parts)

        # Which tab is active afterwards: a removed active sheet hands over to
        # the first new sheet, so that a rerun shows the fresh output.
        select_first_new = self.book.active_tab() in self.edit.removed_positions

        sheet_parts, sheet_rel_types = self._copy_sheets()
        new_rids = self.edit.new_sheet_rids()

        # Second pass over the copied parts: content rewrites that need the
        # complete name maps (tables may be referenced from any sheet).
        copied = self.copier.copied
        tables = (part_text(src.parts[s]) for s in copied if src.content_type(s) == TABLE_CT)
        renamed_tables = table_renames(tables, table_names)
        rewriter = PartRewriter(strings, styles, renames, renamed_tables, max_table_id, vml_blocks)
        for source_part, target_part in copied.items():
            self.copier.new_parts[target_part] = rewriter.rewrite(
                src.content_type(source_part),
                source_part,
                src.parts[source_part],
                sheet=target_part in sheet_parts,
                selected=select_first_new and target_part == sheet_parts[0],
            )
        if self.book.strict:
            # New parts speak the target's conformance class.
            self.copier.new_parts = {
                name: to_strict(data) if name.endswith((".xml", ".rels")) else data
                for name, data in self.copier.new_parts.items()
            }
            sheet_rel_types = [strict_uri(t) for t in sheet_rel_types]

        new_types = dict(self.copier.new_types)
        replacements = {
            tgt.workbook: self.edit.workbook_xml(
                new_names, new_rids, rewriter.rename, select_first_new, self.run_id
            ),
        }
        merged_styles = styles.merged()
        if merged_styles is not None:
            replacements[self.styles_part] = merged_styles
        if self.styles_part not in tgt.parts:
            new_types[self.styles_part] = STYLES_CT
        wb_rels_name = tgt.find(tgt.workbook_rels) or tgt.workbook_rels
        extra = [] if self.styles_rel is None else [self.styles_rel]
        replacements[wb_rels_name] = self.edit.rels_xml(
            new_rids, sheet_parts, sheet_rel_types, extra
        )
        replacements[CONTENT_TYPES] = content_types_xml(tgt, self.removed_parts, new_types)

        data, untouched = write_zip(tgt, self.removed_parts, replacements, self.copier.new_parts)
        return data, self._result(new_names, untouched)

    def _styles(self) -> StyleMerger:
        src, tgt = self.src, self.tgt
        src_styles_rel = [r.part for r in src.rels(src.workbook) if r.kind == "styles"]
        src_styles = part_text(src.parts[src_styles_rel[0]]) if src_styles_rel else ""
        original = tgt.parts.get(self.styles_part)
        return StyleMerger(original, src_styles, tgt.label, strict=self.book.strict)

    def _copy_sheets(self) -> tuple[list[str], list[str]]:
        """Copy the part tree of each source sheet; its new part and relationship type."""
        src = self.src
        src_rels = {r.id: r for r in src.rels(src.workbook)}
        sheet_parts, sheet_rel_types = [], []
        for sheet in self.src_book.sheets:
            rel = src_rels.get(sheet.rid)
            if rel is None or rel.part not in src.parts:
                raise XlsegError(f"{src.label}: sheet '{sheet.name}' has no part")
            sheet_parts.append(self.copier.copy_tree(rel.part, src.workbook, self.tgt.workbook))
            sheet_rel_types.append(rel.type)
        return sheet_parts, sheet_rel_types

    def _result(self, new_names: list[str], untouched: dict[str, str]) -> InsertResult:
        notes = list(self.tgt.notes)
        for i in self.edit.foreign_marked:
            notes.append(
                f"sheet '{self.book.sheets[i].name}' carries xlseg's marker but is not one of "
                "the sheets xlseg wrote (a copy of one, or written by an older version): "
                "it was kept; delete it yourself if you no longer need it"
            )
        return InsertResult(
            sheets=tuple(new_names),
            replaced=tuple(self.book.sheets[i].name for i in self.edit.removed_positions),
            untouched_parts=untouched,
            notes=tuple(notes),
        )


def _free_styles_name(package: Package) -> str:
    folder = posixpath.dirname(package.workbook)
    name = posixpath.join(folder, "styles.xml")
    number = 1
    while package.find(name) is not None:
        number += 1
        name = posixpath.join(folder, f"styles{number}.xml")
    return name
