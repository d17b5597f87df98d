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
from xml.sax.saxutils import escape

from xlseg.errors import XlsegError
from xlseg.report.sheet_names import (
    LISTING_NAME,
    OUTPUT_MARKER,
    SHEET_NAME_MAX,
    is_own_sheet,
    listing_value,
    marker_value,
    parse_listing,
    unique_sheet_name,
)
from xlseg.workbook.insert.package import (
    MAIN_NS,
    REL_NS,
    STRICT_NS,
    STRICT_REL_NS,
    Package,
    Rel,
    edit_rels,
    free_rel_id,
)
from xlseg.workbook.insert.xml_text import (
    attrs,
    elements,
    part_bytes,
    part_text,
    prefix_of,
    qualified,
    quote_attr,
    section,
    set_attr,
    start_tag,
)

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
    """Sheets and defined names of a workbook part, with their exact text spans.

    Values are read by namespace with :mod:`xml.etree`; the text spans used for
    editing are found with the prefix the part binds to SpreadsheetML (none
    for Excel, ``x:`` for the Open XML SDK, ``s:`` for some generators), and
    the two readings must agree element for element.
    """

    def __init__(self, package: Package) -> None:
        self.package = package
        self.original = package.parts[package.workbook]
        self.text = part_text(self.original)
        root = package.xml(package.workbook)
        namespace = root.tag[1:].partition("}")[0] if root.tag.startswith("{") else ""
        if root.tag.rpartition("}")[2] != "workbook" or namespace not in (MAIN_NS, STRICT_NS):
            raise XlsegError(
                f"{package.label} has a workbook part xlseg cannot read "
                f"(its root element is {root.tag!r}, not a SpreadsheetML workbook)"
            )
        self.strict = namespace == STRICT_NS
        self.ns = namespace
        self.prefix = prefix_of(self.text, [namespace])
        if self.prefix is None:
            raise XlsegError(f"{package.label} has a workbook part xlseg cannot read")
        rel_ns = STRICT_REL_NS if self.strict else REL_NS
        self.rel_ns = rel_ns
        q = self.q
        self.sheets_span = section(self.text, q("sheets"))
        sheets_node = root.find(f"{{{namespace}}}sheets")
        if self.sheets_span is None or sheets_node is None:
            raise XlsegError(f"{package.label} has no sheets")
        nodes = sheets_node.findall(f"{{{namespace}}}sheet")
        found = elements(self.sheets_span[0], q("sheet"))
        self._agree(len(found), len(nodes), "sheets")
        self.sheets = []
        for match, node in zip(found, nodes, strict=True):
            rid = node.get(f"{{{rel_ns}}}id") or node.get(f"{{{REL_NS}}}id") or ""
            self.sheets.append(
                Sheet(node.get("name", ""), _integer(node.get("sheetId")), rid, match[0])
            )
        self.names_span = section(self.text, q("definedNames"))
        names_node = root.find(f"{{{namespace}}}definedNames")
        name_nodes = [] if names_node is None else names_node.findall(f"{{{namespace}}}definedName")
        found_names = (
            [] if self.names_span is None else elements(self.names_span[0], q("definedName"))
        )
        self._agree(len(found_names), len(name_nodes), "defined names")
        self.names = [
            DefinedName(
                node.get("name", ""),
                _integer(node.get("localSheetId")) if node.get("localSheetId") else None,
                node.text or "",
                match[0],
            )
            for match, node in zip(found_names, name_nodes, strict=True)
        ]
        root_tag = re.search(rf"<{re.escape(q('workbook'))}(?=[\s/>])[^>]*>", self.text)[0]
        declared = re.findall(r"xmlns:([\w.-]+)\s*=\s*[\"']([^\"']*)[\"']", root_tag)
        self.rel_prefix = next((p for p, ns in declared if ns == rel_ns), None)

    def q(self, local: str) -> str:
        """``local`` qualified with the part's SpreadsheetML prefix."""
        return qualified(self.prefix or "", local)

    def _agree(self, spans: int, nodes: int, what: str) -> None:
        if spans != nodes:
            raise XlsegError(
                f"{self.package.label} has a workbook part xlseg cannot edit safely "
                f"(its {what} read {nodes} by namespace but {spans} as text)"
            )

    def marked_positions(self) -> list[int]:
        """Positions of the sheets carrying :data:`OUTPUT_MARKER`, in order."""
        return sorted(
            {
                n.local_sheet
                for n in self.names
                if n.name.lower() == OUTPUT_MARKER.lower()
                and n.local_sheet is not None
                and n.local_sheet < len(self.sheets)
            }
        )

    def listing(self) -> tuple[str, set[int]] | None:
        """The run and sheetIds named by the workbook's :data:`LISTING_NAME`, if any."""
        for n in self.names:
            if n.local_sheet is None and n.name.lower() == LISTING_NAME.lower():
                return parse_listing(n.text)
        return None

    def own_positions(self) -> list[int]:
        """Positions of the sheets xlseg wrote: marker and listing agree (see sheet_names)."""
        listing = self.listing()
        own = set()
        for n in self.names:
            if n.name.lower() != OUTPUT_MARKER.lower() or n.local_sheet is None:
                continue
            if n.local_sheet < len(self.sheets):
                sheet = self.sheets[n.local_sheet]
                if is_own_sheet(n.text, sheet.sheet_id, listing):
                    own.add(n.local_sheet)
        return sorted(own)

    def active_tab(self) -> int:
        """Position of the active sheet, as the first ``<workbookView>`` says."""
        tag = re.escape(self.q("workbookView"))
        views = [attrs(m[0]) for m in re.finditer(rf"<{tag}(?=[\s/>])[^>]*>", self.text)]
        return int(views[0].get("activeTab", "0")) if views else 0


def output_sheet_names(book: bytes | Path) -> list[str]:
    """Names of the sheets of ``book`` that xlseg wrote (see :mod:`xlseg.report.sheet_names`).

    These are the sheets a rerun of :func:`insert_sheets` replaces. A sheet
    that carries :data:`OUTPUT_MARKER` without being xlseg's (an analyst's
    copy of one) is not among them.

    Parameters
    ----------
    book : bytes or Path
        A workbook package (.xlsx or .xlsm).

    Returns
    -------
    list of str
        The sheets' names, in tab order.

    Raises
    ------
    XlsegError
        If ``book`` is not a readable .xlsx/.xlsm package.
    """
    workbook = Workbook(Package(book, "target"))
    return [workbook.sheets[i].name for i in workbook.own_positions()]


def _integer(value: str | None) -> int:
    """An integer attribute, 0 when it is missing or not a number."""
    try:
        return int(value or "0")
    except ValueError:
        return 0


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
        if rel.kind == "calcchain" and rel.part in package.parts:
            chain = part_text(package.parts[rel.part])
            if removed_ids & set(re.findall(r'\si="(\d+)"', chain)):
                return {rel.id}
    return set()


class WorkbookEdit:
    """What one insertion removes from the target's workbook part, and the new text.

    The removals are decided first (xlseg's earlier sheets, a stale
    calculation chain), because they decide which parts go; the new text is
    asked for once the new sheets have their names, relationship ids and parts.

    Parameters
    ----------
    package : Package
        The target package.
    book : Workbook
        The target's workbook part.
    source_book : Workbook
        The source's workbook part.
    replace_previous : bool
        Whether xlseg's earlier sheets are removed.
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
        own = book.own_positions()
        removed = own if replace_previous else []
        if replace_names is not None:
            wanted = {name.casefold() for name in replace_names}
            removed = [
                i
                for i in removed
                if re.sub(r" \(\d+\)$", "", book.sheets[i].name).casefold() in wanted
            ]
        self.removed_positions = removed
        #: xlseg's earlier sheets that stay (not replaced this time): relisted.
        self.kept_own = [i for i in own if i not in removed]
        #: Sheets that carry the marker but are not xlseg's: kept, and reported.
        self.foreign_marked = [i for i in book.marked_positions() if i not in own]
        self.kept = [s for i, s in enumerate(book.sheets) if i not in self.removed_positions]
        self.rels = {r.id: r for r in package.rels(package.workbook)}
        self.removed_rids = {book.sheets[i].rid for i in self.removed_positions} - {""}
        removed_ids = {str(book.sheets[i].sheet_id) for i in self.removed_positions}
        self.removed_rids |= _stale_calc_chain(package, self.rels, removed_ids)

    def new_sheet_ids(self) -> list[int]:
        """``sheetId`` of each new sheet: one more than any the target has had in view."""
        max_id = max([0, *(s.sheet_id for s in self.book.sheets)])
        return [max_id + i + 1 for i in range(len(self.source_book.sheets))]

    def new_sheet_rids(self) -> list[str]:
        """Relationship ids for the new sheets, unused in the workbook's .rels."""
        taken = set(self.rels)
        return [free_rel_id(taken) for _ in self.source_book.sheets]

    def workbook_xml(
        self,
        new_names: list[str],
        new_rids: list[str],
        rewrite: Callable[[str], str],
        select_first_new: bool,
        run_id: str,
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
        run_id : str
            The run named by the new sheets' markers.

        Returns
        -------
        bytes
            The part: kept sheets and names, then the new ones with their markers.
        """
        book = self.book
        text = book.text
        removed = set(self.removed_positions)
        position = {}  # old position -> new position
        for old in range(len(book.sheets)):
            if old not in removed:
                position[old] = len(position)
        first_new = len(position)
        names_xml = _defined_names(
            book,
            self.source_book,
            position,
            (self.kept_own, self.new_sheet_ids()),
            rewrite,
            run_id,
        )

        # Sheets: the kept elements verbatim, then the new ones.
        sheets = [s.element for i, s in enumerate(book.sheets) if i not in removed]
        sheets += _new_sheets(book, self.source_book, new_names, new_rids, self.new_sheet_ids())
        sheets_span = section(text, book.q("sheets"))
        sheets_start = start_tag(sheets_span[0])
        if sheets_start.endswith("/>"):
            sheets_start = sheets_start[:-2].rstrip() + ">"
        sheets_xml = sheets_start + "".join(sheets) + f"</{book.q('sheets')}>"

        names_span = section(text, book.q("definedNames"))
        if names_span is not None:
            edits = [(names_span.start(), names_span.end(), names_xml)]
        else:
            later = "|".join(
                re.escape(book.q(t))
                for t in (
                    "calcPr", "oleSize", "customWorkbookViews", "pivotCaches", "smartTagPr",
                    "smartTagTypes", "webPublishing", "fileRecoveryPr", "webPublishObjects",
                    "extLst",
                )
            )  # fmt: skip
            after = re.search(
                rf"<(?:{later})(?=[\s/>])|</{re.escape(book.q('workbook'))}\s*>",
                text[sheets_span.end() :],
            )
            at = sheets_span.end() + after.start()
            edits = [(at, at, names_xml)]
        edits.append((sheets_span.start(), sheets_span.end(), sheets_xml))
        for start, end, new in sorted(edits, reverse=True):
            text = text[:start] + new + text[end:]

        total = first_new + len(new_names)
        view = re.escape(book.q("workbookView"))
        text = re.sub(
            rf"<{view}(?=[\s/>])[^>]*>",
            lambda m: _view(m[0], position, total, select_first_new),
            text,
        )
        return part_bytes(text, book.original)

    def rels_xml(
        self,
        new_rids: list[str],
        sheet_parts: list[str],
        rel_types: list[str],
        extra: list[Rel],
    ) -> bytes:
        """The new workbook relationships part.

        Parameters
        ----------
        new_rids, sheet_parts, rel_types : list of str
            Relationship id, part name and relationship type of each new sheet.
        extra : list of Rel
            Further relationships to add (a styles part the target lacked).

        Returns
        -------
        bytes
            The part without the removed relationships, with the new ones.
        """
        base = posixpath.dirname(self.package.workbook)
        new = [
            Rel(rid, rel_type, posixpath.relpath(part, base) if base else part, False, part)
            for rid, part, rel_type in zip(new_rids, sheet_parts, rel_types, strict=True)
        ]
        return edit_rels(self.package, self.package.workbook, self.removed_rids, new + extra)


def _defined_names(
    book: Workbook,
    source_book: Workbook,
    position: dict[int, int],
    own: tuple[list[int], list[int]],
    rewrite: Callable[[str], str],
    run_id: str,
) -> str:
    # Defined names: drop those of removed sheets, shift the others,
    # then add the source's sheet-scoped names, the markers and the listing.
    kept_own, sheet_ids = own
    first_new = len(position)
    count = len(sheet_ids)
    tag = book.q("definedName")
    names = []
    for n in book.names:
        if n.local_sheet is None and n.name.lower() == LISTING_NAME.lower():
            continue  # replaced by this run's listing
        if n.local_sheet is None:
            names.append(n.element)
        elif n.local_sheet in kept_own and n.name.lower() == OUTPUT_MARKER.lower():
            # An earlier sheet of xlseg's that stays: marked with this run.
            sheet_id = book.sheets[n.local_sheet].sheet_id
            names.append(
                f'<{tag} name="{OUTPUT_MARKER}" localSheetId="{position[n.local_sheet]}" '
                f'hidden="1">{escape(marker_value(run_id, sheet_id))}</{tag}>'
            )
        elif n.local_sheet in position:
            start = start_tag(n.element)
            moved = set_attr(start, "localSheetId", str(position[n.local_sheet]))
            names.append(moved + n.element[len(start) :])
        elif n.local_sheet >= len(book.sheets):
            names.append(n.element)  # names a sheet that does not exist: not ours to judge
    for n in source_book.names:
        if n.local_sheet is None or n.local_sheet >= count:
            continue  # workbook-scoped source names are not copied
        start = set_attr(start_tag(n.element), "localSheetId", str(first_new + n.local_sheet))
        if start.endswith("/>"):
            start = start[:-2] + ">"
        start = f"<{tag}" + start[len("<definedName") :]
        names.append(start + escape(rewrite(n.text)) + f"</{tag}>")
    names.append(
        f'<{tag} name="{LISTING_NAME}" hidden="1">'
        f"{escape(listing_value(run_id, [book.sheets[i].sheet_id for i in kept_own] + sheet_ids))}"
        f"</{tag}>"
    )
    for i, sheet_id in enumerate(sheet_ids):
        names.append(
            f'<{tag} name="{OUTPUT_MARKER}" localSheetId="{first_new + i}" '
            f'hidden="1">{escape(marker_value(run_id, sheet_id))}</{tag}>'
        )
    return f"<{book.q('definedNames')}>" + "".join(names) + f"</{book.q('definedNames')}>"


def _new_sheets(
    book: Workbook,
    source_book: Workbook,
    new_names: list[str],
    new_rids: list[str],
    sheet_ids: list[int],
) -> list[str]:
    prefix = book.rel_prefix
    tag = book.q("sheet")
    sheets = []
    for i, (name, rid) in enumerate(zip(new_names, new_rids, strict=True)):
        state = attrs(start_tag(source_book.sheets[i].element)).get("state")
        state_attr = f' state="{quote_attr(state)}"' if state else ""
        rel_attr = f'{prefix}:id="{rid}"' if prefix else f'xmlns:r="{book.rel_ns}" r:id="{rid}"'
        sheet_id = f'sheetId="{sheet_ids[i]}"'
        sheets.append(f'<{tag} name="{quote_attr(name)}" {sheet_id}{state_attr} {rel_attr}/>')
    return sheets


def _view(tag: str, position: dict[int, int], total: int, select_first_new: bool) -> str:
    """A ``<workbookView>`` start tag with its tab positions shifted."""
    first_new = len(position)
    a = attrs(tag)
    active = _integer(a.get("activeTab"))
    if select_first_new:
        tag = set_attr(tag, "activeTab", str(first_new))
    elif active in position and position[active] != active:
        tag = set_attr(tag, "activeTab", str(position[active]))
    if "firstSheet" in a:
        first = _integer(a["firstSheet"])
        shifted = min(sum(1 for old in position if old < first), total - 1)
        tag = set_attr(tag, "firstSheet", str(shifted)) if shifted != first else tag
    return tag
