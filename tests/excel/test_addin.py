"""The add-in and the template: VBA, ribbon, sheets, LibreOffice, UDF wrappers, install.

Independent references: oletools' ``olevba`` (reads the VBA back), the
committed sources and the installed xlwings files (what the VBA must be),
LibreOffice (opens and re-saves the workbooks), python-calamine (reads the
sheets), ``inspect.signature`` (what Excel must see of each UDF).
"""

from __future__ import annotations

import inspect
import io
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pandas as pd
import pytest
import xlwings
from oletools.olevba import VBA_Parser

from conftest import require_soffice
from xlseg.engine.sample import make_sample
from xlseg.excel.addin.build import build_addin, generate_udf_wrappers, install_addin
from xlseg.settings import SETTINGS, SETTINGS_SHEET

TEMPLATES = Path(__file__).resolve().parents[2] / "workbook_templates"
XLWINGS_DIR = Path(xlwings.__file__).parent
CUSTOMUI_NS = "http://schemas.microsoft.com/office/2009/07/customui"
RIBBON_REL = "http://schemas.microsoft.com/office/2007/relationships/ui/extensibility"
MAIN_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
RIBBON_TARGETS = {
    "build_matrix",
    "choose_k",
    "cluster",
    "profile_segments",
    "compare_methods",
    "run_all",
    "assign_customers",
    "settings",
}
UDF_NAMES = (
    "SEGMENT_CLUSTER",
    "SEGMENT_MATRIX",
    "SEGMENT_KSCORES",
    "SEGMENT_PROFILE",
    "SEGMENT_ASSIGN",
    "SEGMENT_TARGETS",
)


def lf(text: str) -> str:
    return text.replace("\r\n", "\n")


def macros(path: Path) -> dict[str, str]:
    """Module name -> code, as oletools reads them."""
    return {
        Path(name).stem: lf(code) for _, _, name, code in VBA_Parser(str(path)).extract_macros()
    }


def body(code: str) -> str:
    """Code without the export header and ``Attribute`` lines."""
    lines = lf(code).split("\n")
    if lines[0].startswith("VERSION 1.0 CLASS"):
        lines = lines[lines.index("END") + 1 :]
    return "\n".join(line for line in lines if not line.startswith("Attribute VB_"))


def expected_xlwings_module() -> str:
    source = (XLWINGS_DIR / "xlwings_custom_addin.bas").read_text(encoding="cp1252")
    assert source.count('PROJECT_NAME As String = "myaddin"') == 1
    return lf(
        source.replace('PROJECT_NAME As String = "myaddin"', 'PROJECT_NAME As String = "xlseg"')
    )


def part(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as package:
        return package.read(name)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    return build_addin(tmp_path_factory.mktemp("addin"))


def test_build_writes_both_files_reproducibly(built, tmp_path):
    addin, template = built
    assert (addin.name, template.name) == ("xlseg.xlam", "xlseg_template.xlsm")
    again = build_addin(tmp_path)
    assert [p.read_bytes() for p in again] == [addin.read_bytes(), template.read_bytes()]


# --------------------------------------------------------------------------- #
# VBA
# --------------------------------------------------------------------------- #


def test_addin_vba_is_the_committed_and_xlwings_sources(built):
    code = macros(built[0])
    assert set(code) == {"ThisWorkbook", "Sheet1", "xlwings", "Dictionary", "XlsegRibbon"}
    assert code["XlsegRibbon"] == lf((TEMPLATES / "XlsegRibbon.bas").read_text())
    assert code["xlwings"] == expected_xlwings_module()
    dictionary = (XLWINGS_DIR / "addin" / "Dictionary.cls").read_text(encoding="cp1252")
    assert body(code["Dictionary"]) == body(dictionary)


def test_template_vba_holds_xlwings_and_udf_wrappers(built):
    code = macros(built[1])
    sheets = {f"Sheet{i}" for i in range(1, 5)}
    assert set(code) == {"ThisWorkbook", *sheets, "xlwings", "Dictionary", "xlwings_udfs"}
    assert code["xlwings"] == expected_xlwings_module()
    assert code["xlwings_udfs"].startswith('Attribute VB_Name = "xlwings_udfs"\n')
    # Every wrapper calls into the Python module and resolves through the xlwings module.
    calls = re.findall(r'XLPy\.CallUDF\("xlseg_udfs", "(\w+)"', code["xlwings_udfs"])
    assert set(UDF_NAMES) <= set(calls)
    assert re.search(r"^Function XLPy\(", code["xlwings"], re.MULTILINE)


def test_document_modules_match_the_code_names_of_the_parts(built):
    for path in built:
        code = macros(path)
        workbook = ElementTree.fromstring(part(path, "xl/workbook.xml"))
        assert workbook.find(f"{MAIN_NS}workbookPr").get("codeName") == "ThisWorkbook"
        with zipfile.ZipFile(path) as package:
            sheet_parts = [n for n in package.namelist() if n.startswith("xl/worksheets/sheet")]
        code_names = {
            ElementTree.fromstring(part(path, name)).find(f"{MAIN_NS}sheetPr").get("codeName")
            for name in sheet_parts
        }
        documents = {name for name in code if "VB_Base" in code[name] and name != "Dictionary"}
        assert documents == code_names | {"ThisWorkbook"}


def test_content_types(built):
    addin, template = built
    main = "/xl/workbook.xml"
    for path, expected in (
        (addin, "application/vnd.ms-excel.addin.macroEnabled.main+xml"),
        (template, "application/vnd.ms-excel.sheet.macroEnabled.main+xml"),
    ):
        types = ElementTree.fromstring(part(path, "[Content_Types].xml"))
        overrides = {e.get("PartName"): e.get("ContentType") for e in types}
        defaults = {e.get("Extension"): e.get("ContentType") for e in types}
        assert overrides[main] == expected
        vba = overrides.get("/xl/vbaProject.bin", defaults.get("bin"))
        assert vba == "application/vnd.ms-office.vbaProject"


# --------------------------------------------------------------------------- #
# Ribbon
# --------------------------------------------------------------------------- #


def ribbon_buttons(addin: Path) -> list[ElementTree.Element]:
    rels = ElementTree.fromstring(part(addin, "_rels/.rels"))
    targets = [r.get("Target") for r in rels if r.get("Type") == RIBBON_REL]
    assert targets == ["customUI/customUI14.xml"]
    ui = ElementTree.fromstring(part(addin, targets[0]))
    assert ui.tag == f"{{{CUSTOMUI_NS}}}customUI"
    return list(ui.iter(f"{{{CUSTOMUI_NS}}}button"))


def test_ribbon_is_referenced_and_in_the_2009_namespace(built):
    addin = built[0]
    assert part(addin, "customUI/customUI14.xml") == (TEMPLATES / "customUI14.xml").read_bytes()
    ui = ElementTree.fromstring(part(addin, "customUI/customUI14.xml"))
    tabs = list(ui.iter(f"{{{CUSTOMUI_NS}}}tab"))
    assert [t.get("label") for t in tabs] == ["Segmentation"]


def test_every_button_calls_an_existing_callback_with_help(built):
    source = lf((TEMPLATES / "XlsegRibbon.bas").read_text())
    subs = dict(re.findall(r"^Sub (\w+)\((.*)\)$", source, re.MULTILINE))
    buttons = ribbon_buttons(built[0])
    assert buttons
    for button in buttons:
        callback = button.get("onAction")
        assert subs.get(callback) == "control As IRibbonControl", callback
        for attribute in ("imageMso", "label", "screentip", "supertip"):
            assert (button.get(attribute) or "").strip(), (callback, attribute)
    assert len({b.get("id") for b in buttons}) == len(buttons)


def test_callbacks_run_every_ribbon_function_of_python(built):
    source = lf((TEMPLATES / "XlsegRibbon.bas").read_text())
    procedures = re.findall(r"^Sub (\w+)\(.*?\n(.*?)^End Sub", source, re.MULTILINE | re.DOTALL)
    called = {}
    for name, text in procedures:
        match = re.fullmatch(
            r'\s*RunPython "import xlseg\.ribbon; xlseg\.ribbon\.(\w+)\(\)"\s*', text
        )
        assert match, name
        called[name] = match.group(1)
    assert set(called.values()) == RIBBON_TARGETS
    assert set(called) == {b.get("onAction") for b in ribbon_buttons(built[0])}


# --------------------------------------------------------------------------- #
# Sheets
# --------------------------------------------------------------------------- #


def read_sheets(path: Path) -> dict[str, pd.DataFrame]:
    return pd.read_excel(io.BytesIO(path.read_bytes()), sheet_name=None, engine="calamine")


def test_addin_conf_sheet_mirrors_the_quickstart(built):
    ours = pd.read_excel(
        io.BytesIO(built[0].read_bytes()), sheet_name=None, header=None, engine="calamine"
    )
    quickstart = pd.read_excel(
        XLWINGS_DIR / "quickstart_addin_ribbon.xlam",
        sheet_name=None,
        header=None,
        engine="calamine",
    )
    assert list(ours) == ["_xlseg.conf"] and list(quickstart) == ["_myaddin.conf"]
    keys = ours["_xlseg.conf"].iloc[:, 0].tolist()
    assert sorted(keys) == sorted(quickstart["_myaddin.conf"].iloc[:, 0].dropna().tolist())
    values = dict(zip(keys, ours["_xlseg.conf"].iloc[:, 1], strict=True))
    assert values["UDF Modules"] == "xlseg_udfs"
    assert pd.isna(values["Interpreter_Win"]) and pd.isna(values["Interpreter_Mac"])


def test_template_sheets_hold_the_sample_and_the_settings(built):
    sheets = read_sheets(built[1])
    assert list(sheets) == ["Offers", "Transactions", SETTINGS_SHEET, "Try it"]
    sample = make_sample()
    pd.testing.assert_frame_equal(sheets["Offers"], sample.offers, check_dtype=False)
    pd.testing.assert_frame_equal(sheets["Transactions"], sample.transactions, check_dtype=False)
    settings = sheets[SETTINGS_SHEET]
    assert list(settings.columns) == ["Setting", "Value"]
    assert settings["Setting"].tolist() == [s.key for s in SETTINGS]
    for setting, value in zip(SETTINGS, settings["Value"], strict=True):
        if setting.default is None:
            assert pd.isna(value)
        else:
            assert str(value) == str(setting.default), setting.key


def test_settings_sheet_offers_drop_downs_for_choices(built):
    with zipfile.ZipFile(built[1]) as package:
        sheet = ElementTree.fromstring(package.read("xl/worksheets/sheet3.xml"))
    lists = {
        v.get("sqref"): v.find(f"{MAIN_NS}formula1").text.strip('"').split(",")
        for v in sheet.iter(f"{MAIN_NS}dataValidation")
        if v.get("type") == "list"
    }
    expected = {f"B{row}": list(s.choices) for row, s in enumerate(SETTINGS, start=2) if s.choices}
    assert {"method", "metric"} <= {s.key for s in SETTINGS if s.choices}
    assert lists == expected


def test_try_it_calls_every_worksheet_function_on_the_sample_ranges(built):
    sample = make_sample()
    transactions = f"Transactions!A1:B{len(sample.transactions) + 1}"
    offers = f"Offers!A1:G{len(sample.offers) + 1}"
    with zipfile.ZipFile(built[1]) as package:
        sheet = ElementTree.fromstring(package.read("xl/worksheets/sheet4.xml"))
    formulas = [f.text for f in sheet.iter(f"{MAIN_NS}f")]
    assert formulas == [
        f"SEGMENT_CLUSTER({transactions})",
        f"SEGMENT_MATRIX({transactions}, {offers})",
        f"SEGMENT_KSCORES({transactions})",
        f"SEGMENT_PROFILE({transactions}, {offers})",
    ]


# --------------------------------------------------------------------------- #
# LibreOffice
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def resaved(built, tmp_path_factory) -> dict[str, Path]:
    """Both workbooks re-saved by LibreOffice (the add-in through an .xlsm copy)."""
    soffice = require_soffice()
    work = tmp_path_factory.mktemp("libreoffice")
    addin, template = built
    # LibreOffice refuses the add-in content type; the same package as a workbook loads.
    copy = work / "addin_as_workbook.xlsm"
    with zipfile.ZipFile(addin) as source, zipfile.ZipFile(copy, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "[Content_Types].xml":
                data = data.replace(
                    b"application/vnd.ms-excel.addin.macroEnabled.main+xml",
                    b"application/vnd.ms-excel.sheet.macroEnabled.main+xml",
                )
            target.writestr(info, data)
    out = work / "out"
    result = subprocess.run(
        [
            soffice,
            f"-env:UserInstallation={(work / 'profile').as_uri()}",
            "--headless",
            "--convert-to",
            "xlsm:Calc MS Excel 2007 VBA XML",
            "--outdir",
            str(out),
            str(template),
            str(copy),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    return {"addin": out / copy.name, "template": out / template.name}


@pytest.mark.parametrize("which", ["addin", "template"])
def test_libreoffice_keeps_every_module(built, resaved, which):
    original = built[0] if which == "addin" else built[1]
    assert resaved[which].is_file(), "LibreOffice wrote no file"
    assert set(macros(resaved[which])) == set(macros(original))


def test_libreoffice_reads_the_template_sheets(resaved):
    sheets = read_sheets(resaved["template"])
    assert list(sheets)[:3] == ["Offers", "Transactions", SETTINGS_SHEET]
    pd.testing.assert_frame_equal(
        sheets["Transactions"], make_sample().transactions, check_dtype=False
    )


# --------------------------------------------------------------------------- #
# UDF wrappers
# --------------------------------------------------------------------------- #

TINY_UDFS = """
    import xlwings as xw

    @xw.func
    def tiny_cluster(data, k=None, seed=0):
        return data

    @xw.func(volatile=True)
    def tiny_varargs(first, *rest):
        return first

    @xw.func
    def tiny_caller(data, caller):
        return data

    def not_a_udf(x):
        return x
"""


@pytest.fixture
def tiny_module(tmp_path, monkeypatch) -> str:
    name = "xlseg_test_tiny_udfs"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(TINY_UDFS))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def signatures(vba: str) -> dict[str, str]:
    return dict(re.findall(r"^Function (\w+)\((.*)\)$", vba, re.MULTILINE))


def test_wrappers_show_excel_the_arguments(tiny_module):
    vba = generate_udf_wrappers(tiny_module)
    assert signatures(vba) == {
        "tiny_cluster": "data, Optional k, Optional seed",
        "tiny_varargs": "first, ParamArray rest()",
        "tiny_caller": "data",
    }
    blocks = dict(re.findall(r"^Function (\w+)\(.*?\n(.*?)^End Function", vba, re.M | re.S))
    assert "Application.Volatile" in blocks["tiny_varargs"]
    assert "Application.Volatile" not in blocks["tiny_cluster"]
    assert (
        f'XLPy.CallUDF("{tiny_module}", "tiny_cluster", Array(data, k, seed), ThisWorkbook' in vba
    )
    assert "Array(data, Nothing)" in blocks["tiny_caller"]  # caller filled in by xlwings


def test_wrapper_generation_leaks_nothing(tiny_module):
    import importlib

    before_func = xlwings.func
    module = importlib.import_module(tiny_module)
    generate_udf_wrappers(tiny_module)
    assert xlwings.func is before_func
    assert "udfs" not in vars(xlwings) or sys.platform.startswith("win")
    if not sys.platform.startswith("win"):
        for name in ("pythoncom", "pywintypes", "win32com", "win32com.client", "xlwings.udfs"):
            assert name not in sys.modules, name
        assert not hasattr(module.tiny_cluster, "__xlfunc__")
    assert sys.modules[tiny_module] is module


def test_wrappers_for_the_real_worksheet_functions():
    """Excel sees each UDF with the arguments of its Python signature."""
    import xlseg_udfs

    vba = signatures(generate_udf_wrappers("xlseg_udfs"))
    for name in UDF_NAMES:
        parameters = [
            p
            for p in inspect.signature(getattr(xlseg_udfs, name)).parameters.values()
            if p.name != "caller"
        ]
        expected = ", ".join(
            ("Optional " if p.default is not p.empty else "")
            + ("ParamArray " if p.kind is p.VAR_POSITIONAL else "")
            + p.name
            + ("()" if p.kind is p.VAR_POSITIONAL else "")
            for p in parameters
        )
        assert vba[name] == expected


# --------------------------------------------------------------------------- #
# Installing
# --------------------------------------------------------------------------- #


@pytest.fixture
def fake_addin(tmp_path) -> Path:
    path = tmp_path / "built" / "xlseg.xlam"
    path.parent.mkdir()
    path.write_bytes(b"stand-in for the add-in")
    return path


def test_install_elsewhere_explains_and_names_the_file(fake_addin, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    message = install_addin(fake_addin, platform="linux")
    assert "Windows or macOS" in message
    assert str(fake_addin.resolve()) in message
    assert not (tmp_path / "home").exists()


def test_install_on_windows_copies_to_xlstart(fake_addin, tmp_path, monkeypatch):
    monkeypatch.setenv("APPDATA", str(tmp_path / "Roaming"))
    message = install_addin(fake_addin, platform="win32")
    target = tmp_path / "Roaming" / "Microsoft" / "Excel" / "XLSTART" / "xlseg.xlam"
    assert target.read_bytes() == fake_addin.read_bytes()
    assert str(target) in message


def test_install_on_macos_copies_to_the_excel_startup_folder(fake_addin, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    message = install_addin(fake_addin, platform="darwin")
    target = (
        tmp_path
        / "Library/Group Containers/UBF8T346G9.Office/User Content.localized/Startup.localized"
        / "Excel"
        / "xlseg.xlam"
    )
    assert target.read_bytes() == fake_addin.read_bytes()
    assert str(target) in message


def test_install_of_a_missing_file_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="xlseg addin build"):
        install_addin(tmp_path / "nowhere.xlam", platform="win32")
