"""Which k-means kernel runs, and where numba may keep its compiled code.

numba is optional. The compiled kernel (:mod:`xlseg.engine.kmeans_kernel`) is
used when numba imports and ``XLSEG_NO_NUMBA`` is not set to a true value;
otherwise the numpy kernel (:mod:`xlseg.engine.kmeans_numpy`), which gives the
same results more slowly.

numba caches compiled code beside the source file or, if that folder is not
writable, in the user's cache folder, and raises ``cannot cache function ...:
no locator available`` when neither is writable: a system-wide install run by
a service account whose home does not exist. So before numba is imported,
``NUMBA_CACHE_DIR`` is pointed at the first writable one of the package's own
folder, the user cache folder (``XDG_CACHE_HOME`` or ``~/.cache``) and the
temporary folder, each under ``xlseg``; if none is writable the kernel is
compiled without a cache, every run. A ``NUMBA_CACHE_DIR`` the user set is
left alone.

Compiling the kernel takes several seconds once per installation. A one-line
notice goes to stderr before it when there is no cached kernel, or after
`NOTICE_AFTER` seconds of loading one (a stale cache compiles again), so that
a first run never waits in silence.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from xlseg.engine.user_cache import home_cache, temp_folder, writable_folder

__all__ = ["COMPILE_SECONDS", "NOTICE_AFTER", "fit_starts", "kernel_name"]

NOTICE_AFTER = 3.0
"""Seconds of loading a cached kernel after which the compile notice is printed anyway."""

COMPILE_SECONDS = 8
"""About how long the one-time compile takes on a 2-core machine (for the notice)."""

_lock = threading.Lock()
_kernel: Callable | None = None
_name = ""


def _numba_wanted() -> bool:
    return os.environ.get("XLSEG_NO_NUMBA", "").strip().lower() in ("", "0", "false", "no")


def _cache_candidates() -> list[Path]:
    folders = [Path(__file__).resolve().parent / "__pycache__", home_cache("numba")]
    return [f for f in folders if f is not None] + [temp_folder("numba")]


def _configure_cache() -> bool:
    """Point numba's cache at a writable folder; False if there is none."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return True
    folder = writable_folder(_cache_candidates())
    if folder is None:
        return False
    if folder.name != "__pycache__":  # numba's own default works for the package folder
        os.environ["NUMBA_CACHE_DIR"] = str(folder)
    return True


def _notice() -> None:
    print(
        f"xlseg: preparing the fast k-means kernel (once, about {COMPILE_SECONDS} s)",
        file=sys.stderr,
        flush=True,
    )


def _has_cache() -> bool:
    """Whether numba's index of the compiled kernel exists (it may still be stale)."""
    folder = os.environ.get("NUMBA_CACHE_DIR")
    root = Path(folder) if folder else Path(__file__).resolve().parent / "__pycache__"
    return any(root.glob(f"{'**/' if folder else ''}kmeans_kernel.fit_starts-*.nbi"))


def _load_compiled() -> Callable:
    cached = _configure_cache()
    if not (cached and _has_cache()):
        _notice()
        timer = None
    else:  # a stale cache compiles again: say so if loading takes long
        timer = threading.Timer(NOTICE_AFTER, _notice)
        timer.daemon = True
        timer.start()
    try:
        from xlseg.engine.kmeans_kernel import compile_kernel

        return compile_kernel(cache=cached)
    finally:
        if timer is not None:
            timer.cancel()


def fit_starts() -> Callable:
    """The kernel function ``fit_starts(X, first, draws, ...)`` (see kmeans_kernel)."""
    global _kernel, _name
    with _lock:
        if _kernel is None:
            if _numba_wanted():
                try:
                    _kernel, _name = _load_compiled(), "numba"
                except ImportError:
                    _kernel = None
            if _kernel is None:
                from xlseg.engine import kmeans_numpy

                _kernel, _name = kmeans_numpy.fit_starts, "numpy"
        return _kernel


def kernel_name() -> str:
    """``"numba"`` or ``"numpy"``: the kernel :func:`fit_starts` returns."""
    fit_starts()
    return _name
