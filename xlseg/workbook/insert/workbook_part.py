"""The workbook part: its sheets and defined names, read and edited as text.

An insertion changes only the ``<sheets>`` and ``<definedNames>`` sections, the
``<workbookView>`` tab positions and the sheet relationships, so everything else
in these two parts (root element, namespaces, unknown markup) stays as written.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree
from xml.sax.saxutils import escape, unescape

from xlseg.errors import XlsegError
from xlseg.report.sheet_names import OUTPUT_MARKER, SHEET_NAME_MAX, unique_sheet_name
from xlseg.workbook.insert.package import MAIN_NS, REL_NS, STRICT_NS, Package, Rel
from xlseg.workbook.insert.xml_text import (
    attrs,
    elements,
    part_text,
    quote_attr,
    section,
    set_attr,
    start_tag,
)

_MARKER_VALUE = "TRUE"

_SHEET_NAME_FORBIDDEN = set("[]:*?/\\")


@dataclass(frozen=True)
class Sheet:
    """One ``<sheet>`` of a workbook part."""

    name: str
    sheet_id: int
    rid: str
    element: str  # the <sheet .../> element as written


@dataclass(frozen=True)
class DefinedName:
    """One ``<definedName>`` of a workbook part."""

    name: str
    local_sheet: int | None
    text: str  # formula, unescaped
    element: str


class Workbook:
    """Sheets and defined names of a workbook part, with their exact text spans."""

    def __init__(self, package: Package) -> None:
        self.text = part_text(package.parts[package.workbook])
        root = ElementTree.fromstring(package.parts[package.workbook])
        if root.tag == f"{{{STRICT_NS}}}workbook":
            raise XlsegError(
                f"{package.label} is saved as 'Strict Open XML'; save it as "
                "'Excel Workbook (*.xlsx)' first"
            )
        if root.tag != f"{{{MAIN_NS}}}workbook" or not re.search(r"<workbook\b", self.text):
            raise XlsegError(f"{package.label} has a workbook part xlseg cannot read")
        self.sheets_span = section(self.text, "sheets")
        if self.sheets_span is None:
            raise XlsegError(f"{package.label} has no sheets")
        found = elements(self.sheets_span[0], "sheet")
        self.sheets = []
        for match in found:
            a = attrs(start_tag(match[0]))
            rid = next((v for k, v in a.items() if k.endswith(":id")), "")
            self.sheets.append(Sheet(a.get("name", ""), int(a.get("sheetId", "0")), rid, match[0]))
        self.names_span = section(self.text, "definedNames")
        self.names = []
        if self.names_span is not None and not self.names_span[0].endswith("/>"):
            for match in elements(self.names_span[0], "definedName"):
                a = attrs(start_tag(match[0]))
                local = a.get("localSheetId")
                start = start_tag(match[0])
                inner = (
                    "" if start.endswith("/>") else match[0][len(start) : -len("</definedName>")]
                )
                self.names.append(
                    DefinedName(
                        a.get("name", ""),
                        int(local) if local is not None else None,
                        unescape(inner, {"&quot;": '"', "&apos;": "'"}) if inner else "",
                        match[0],
                    )
                )
        root_tag = re.search(r"<workbook\b[^>]*>", self.text)[0]
        declared = re.findall(r"xmlns:([\w.-]+)\s*=\s*[\"']([^\"']*)[\"']", root_tag)
        self.rel_prefix = next((p for p, ns in declared if ns == REL_NS), None)

    def marked_positions(self) -> list[int]:
        """Positions of the sheets carrying :data:`OUTPUT_MARKER`, in order."""
        return sorted(
            {
                n.local_sheet
                for n in self.names
                if n.name.lower() == OUTPUT_MARKER.lower() and n.local_sheet is not None
            }
        )

    def active_tab(self) -> int:
        """Position of the active sheet, as the first ``<workbookView>`` says."""
        views = [attrs(m[0]) for m in re.finditer(r"<workbookView\b[^>]*>", self.text)]
        return int(views[0].get("activeTab", "0")) if views else 0


def output_sheet_names(book: bytes | Path) -> list[str]:
    """Names of the sheets of ``book`` that carry xlseg's :data:`OUTPUT_MARKER`.

    These are the sheets a rerun of :func:`insert_sheets` replaces; readers use
    the list to skip xlseg's own output when they look for input tables.

    Parameters
    ----------
    book : bytes or Path
        A workbook package (.xlsx or .xlsm).

    Returns
    -------
    list of str
        The marked sheets' names, in tab order.

    Raises
    ------
    XlsegError
        If ``book`` is not a readable .xlsx/.xlsm package.
    """
    workbook = Workbook(Package(book, "target"))
    return [
        workbook.sheets[i].name for i in workbook.marked_positions() if i < len(workbook.sheets)
    ]


# ---------------------------------------------------------------------------
# Sheet names


def _check_sheet_name(name: str, label: str) -> None:
    problem = None
    if not name or len(name) > SHEET_NAME_MAX:
        problem = f"must have 1 to {SHEET_NAME_MAX} characters"
    elif _SHEET_NAME_FORBIDDEN & set(name):
        problem = "must not contain any of [ ] : * ? / \\"
    elif name.startswith("'") or name.endswith("'"):
        problem = "must not start or end with an apostrophe"
    if problem:
        raise XlsegError(f"sheet name '{name}' in {label} {problem}")


def new_sheet_names(
    sheets: Iterable[Sheet], kept: Iterable[Sheet], label: str
) -> tuple[list[str], dict[str, str]]:
    """Names for the inserted sheets, unique among the sheets the target keeps.

    Parameters
    ----------
    sheets : iterable of Sheet
        The source's sheets, in order.
    kept : iterable of Sheet
        The target's sheets that stay.
    label : str
        The source, for error messages.

    Returns
    -------
    names : list of str
        The name of each inserted sheet in the target.
    renames : dict of str to str
        Source name -> target name, for the sheets whose name had to change.

    Raises
    ------
    XlsegError
        If a source sheet name is not one Excel accepts.
    """
    taken_names = {s.name.casefold() for s in kept}
    renames: dict[str, str] = {}
    new_names = []
    for sheet in sheets:
        _check_sheet_name(sheet.name, label)
        name = unique_sheet_name(sheet.name, taken_names)
        taken_names.add(name.casefold())
        new_names.append(name)
        if name != sheet.name:
            renames[sheet.name] = name
    return new_names, renames


# ---------------------------------------------------------------------------
# Editing the workbook part and its relationships


def _stale_calc_chain(package: Package, rels: dict[str, Rel], removed_ids: set[str]) -> set[str]:
    """The calculation chain's relationship id if it lists cells of removed sheets.

    Excel repairs a workbook whose calculation chain names a missing sheet,
    and it rebuilds a missing chain silently, so such a chain is dropped.
    """
    for rel in rels.values():
        if rel.type == REL_NS + "/calcChain" and rel.part in package.parts:
            chain = part_text(package.parts[rel.part])
            if removed_ids & set(re.findall(r'\si="(\d+)"', chain)):
                return {rel.id}
    return set()


class WorkbookEdit:
    """What one insertion removes from the target's workbook part, and the new text.

    The removals are decided first (marked sheets, a stale calculation chain),
    because they decide which parts go; the new text is asked for once the new
    sheets have their names, relationship ids and parts.

    Parameters
    ----------
    package : Package
        The target package.
    book : Workbook
        The target's workbook part.
    source_book : Workbook
        The source's workbook part.
    replace_previous : bool
        Whether the sheets carrying :data:`OUTPUT_MARKER` are removed.
    replace_names : collection of str, optional
        Remove only the marked sheets of these names (a `` (2)`` suffix ignored).
    """

    def __init__(
        self,
        package: Package,
        book: Workbook,
        source_book: Workbook,
        replace_previous: bool,
        replace_names: Collection[str] | None = None,
    ) -> None:
        self.package, self.book, self.source_book = package, book, source_book
        self.removed_positions = book.marked_positions() if replace_previous else []
        if replace_names is not None:
            wanted = {name.casefold() for name in replace_names}
            self.removed_positions = [
                i
                for i in self.removed_positions
                if re.sub(r" \(\d+\)$", "", book.sheets[i].name).casefold() in wanted
            ]
        self.kept = [s for i, s in enumerate(book.sheets) if i not in self.removed_positions]
        self.rels = {r.id: r for r in package.rels(package.workbook)}
        self.removed_rids = {book.sheets[i].rid for i in self.removed_positions}
        removed_ids = {str(book.sheets[i].sheet_id) for i in self.removed_positions}
        self.removed_rids |= _stale_calc_chain(package, self.rels, removed_ids)

    def new_sheet_rids(self) -> list[str]:
        """Relationship ids for the new sheets, unused in the workbook's .rels."""
        rids, number = [], 0
        for _ in self.source_book.sheets:
            number += 1
            while f"rId{number}" in self.rels:
                number += 1
            rids.append(f"rId{number}")
        return rids

    def workbook_xml(
        self,
        new_names: list[str],
        new_rids: list[str],
        rewrite: Callable[[str], str],
        select_first_new: bool,
    ) -> bytes:
        """The new workbook part.

        Parameters
        ----------
        new_names, new_rids : list of str
            Name and relationship id of each new sheet.
        rewrite : callable
            Rewrites the formula of a copied defined name (renamed sheets, tables).
        select_first_new : bool
            Make the first new sheet the active tab.

        Returns
        -------
        bytes
            The part: kept sheets and names, then the new ones with their markers.
        """
        text = self.book.text
        removed = set(self.removed_positions)
        position = {}  # old position -> new position
        for old in range(len(self.book.sheets)):
            if old not in removed:
                position[old] = len(position)
        first_new = len(position)
        names_xml = _defined_names(self.book, self.source_book, position, len(new_names), rewrite)

        # Sheets: the kept elements verbatim, then the new ones.
        sheets = [s.element for i, s in enumerate(self.book.sheets) if i not in removed]
        sheets += _new_sheets(self.book, self.source_book, new_names, new_rids)
        sheets_span = section(text, "sheets")
        sheets_start = start_tag(sheets_span[0])
        sheets_xml = sheets_start + "".join(sheets) + "</sheets>"

        names_span = section(text, "definedNames")
        if names_span is not None:
            edits = [(names_span.start(), names_span.end(), names_xml)]
        else:
            after = re.search(
                r"<(?:calcPr|oleSize|customWorkbookViews|pivotCaches|smartTagPr|smartTagTypes"
                r"|webPublishing|fileRecoveryPr|webPublishObjects|extLst)\b|</workbook>",
                text[sheets_span.end() :],
            )
            at = sheets_span.end() + after.start()
            edits = [(at, at, names_xml)]
        edits.append((sheets_span.start(), sheets_span.end(), sheets_xml))
        for start, end, new in sorted(edits, reverse=True):
            text = text[:start] + new + text[end:]

        total = first_new + len(new_names)
        text = re.sub(
            r"<workbookView\b[^>]*>",
            lambda m: _view(m[0], position, total, select_first_new),
            text,
        )
        return text.encode("utf-8")

    def rels_xml(self, new_rids: list[str], sheet_parts: list[str], rel_types: list[str]) -> bytes:
        """The new workbook relationships part.

        Parameters
        ----------
        new_rids, sheet_parts, rel_types : list of str
            Relationship id, part name and relationship type of each new sheet.

        Returns
        -------
        bytes
            The part without the removed relationships, with the new ones.
        """
        name = self.package.find(self.package.workbook_rels)
        text = part_text(self.package.parts[name])
        removed = self.removed_rids

        def keep(m: re.Match[str]) -> str:
            return "" if attrs(m[0]).get("Id") in removed else m[0]

        text = re.sub(r"<Relationship\b[^>]*/>", keep, text)
        base = posixpath.dirname(self.package.workbook)
        new = []
        for rid, part, rel_type in zip(new_rids, sheet_parts, rel_types, strict=True):
            target = posixpath.relpath(part, base) if base else part
            new.append(f'<Relationship Id="{rid}" Type="{rel_type}" Target="{target}"/>')
        end = text.rindex("</Relationships>")
        return (text[:end] + "".join(new) + text[end:]).encode("utf-8")


def _defined_names(
    book: Workbook,
    source_book: Workbook,
    position: dict[int, int],
    count: int,
    rewrite: Callable[[str], str],
) -> str:
    # Defined names: drop those of removed sheets, shift the others,
    # then add the source's sheet-scoped names and the markers.
    first_new = len(position)
    names = []
    for n in book.names:
        if n.local_sheet is None:
            names.append(n.element)
        elif n.local_sheet in position:
            start = start_tag(n.element)
            moved = set_attr(start, "localSheetId", str(position[n.local_sheet]))
            names.append(moved + n.element[len(start) :])
    for n in source_book.names:
        if n.local_sheet is None or n.local_sheet >= count:
            continue  # workbook-scoped source names are not copied
        start = set_attr(start_tag(n.element), "localSheetId", str(first_new + n.local_sheet))
        if start.endswith("/>"):
            start = start[:-2] + ">"
        names.append(start + escape(rewrite(n.text)) + "</definedName>")
    for i in range(count):
        names.append(
            f'<definedName name="{OUTPUT_MARKER}" localSheetId="{first_new + i}" '
            f'hidden="1">{_MARKER_VALUE}</definedName>'
        )
    return "<definedNames>" + "".join(names) + "</definedNames>"


def _new_sheets(
    book: Workbook, source_book: Workbook, new_names: list[str], new_rids: list[str]
) -> list[str]:
    max_id = max([0, *(s.sheet_id for s in book.sheets)])
    prefix = book.rel_prefix
    sheets = []
    for i, (name, rid) in enumerate(zip(new_names, new_rids, strict=True)):
        state = attrs(start_tag(source_book.sheets[i].element)).get("state")
        state_attr = f' state="{quote_attr(state)}"' if state else ""
        rel_attr = f'{prefix}:id="{rid}"' if prefix else f'xmlns:r="{REL_NS}" r:id="{rid}"'
        sheet_id = f'sheetId="{max_id + i + 1}"'
        sheets.append(f'<sheet name="{quote_attr(name)}" {sheet_id}{state_attr} {rel_attr}/>')
    return sheets


def _view(tag: str, position: dict[int, int], total: int, select_first_new: bool) -> str:
    """A ``<workbookView>`` start tag with its tab positions shifted."""
    first_new = len(position)
    a = attrs(tag)
    active = int(a.get("activeTab", "0"))
    if select_first_new:
        tag = set_attr(tag, "activeTab", str(first_new))
    elif active in position and position[active] != active:
        tag = set_attr(tag, "activeTab", str(position[active]))
    if "firstSheet" in a:
        first = int(a["firstSheet"])
        shifted = min(sum(1 for old in position if old < first), total - 1)
        tag = set_attr(tag, "firstSheet", str(shifted)) if shifted != first else tag
    return tag
