"""Writable folders for numba's cache of compiled code.

numba writes beside the installed package or into the user's home
(``~/.cache``) by default. A system-wide install run by a service account
whose home does not exist has neither, and numba then fails outright
(``cannot cache function ...: no locator available``). xlseg picks the folder
itself before importing it: the usual place if it is writable, else a
per-user folder in the temporary directory.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["home_cache", "temp_folder", "writable_folder"]


def writable_folder(candidates: list[Path]) -> Path | None:
    """The first of ``candidates`` that exists or can be made and accepts a file."""
    for folder in candidates:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder):
                pass
        except OSError:
            continue
        return folder
    return None


def home_cache(name: str) -> Path | None:
    """``$XDG_CACHE_HOME/xlseg/name`` or ``~/.cache/xlseg/name``; None without a home."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "xlseg" / name
    try:
        return Path.home() / ".cache" / "xlseg" / name
    except RuntimeError:  # no home directory can be determined
        return None


def temp_folder(name: str) -> Path:
    """A per-user folder ``xlseg-name-USER`` in the temporary directory."""
    user = os.environ.get("USER") or (str(os.getuid()) if hasattr(os, "getuid") else "user")
    return Path(tempfile.gettempdir()) / f"xlseg-{name}-{user}"
