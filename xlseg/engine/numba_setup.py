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
notice goes to stderr before it when there is no cached kernel newer than the
kernel's source, so that a first run never waits in silence.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from xlseg.engine.user_cache import home_cache, temp_folder, writable_folder

__all__ = ["COMPILE_SECONDS", "fit_starts", "kernel_name"]

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
    """Whether numba's index of the compiled kernel exists and is newer than its source."""
    source = Path(__file__).resolve().with_name("kmeans_kernel.py")
    folder = os.environ.get("NUMBA_CACHE_DIR")
    root = Path(folder) if folder else source.parent / "__pycache__"
    pattern = f"{'**/' if folder else ''}kmeans_kernel.fit_starts-*.nbi"
    try:
        built = source.stat().st_mtime
        return any(index.stat().st_mtime >= built for index in root.glob(pattern))
    except OSError:
        return False


class _Compiled:
    """The compiled kernel, one specialisation per data type, each compiled on first use."""

    def __init__(self, cache: bool) -> None:
        from xlseg.engine.kmeans_kernel import compile_kernel

        self._compile = compile_kernel
        self._cache = cache
        self._by_type: dict[str, Callable] = {}
        self._lock = threading.Lock()
        self._get("float64")

    def _get(self, dtype: str) -> Callable:
        with self._lock:
            if dtype not in self._by_type:
                self._by_type[dtype] = self._compile(dtype, cache=self._cache)
            return self._by_type[dtype]

    def __call__(self, X, *args) -> None:
        self._get(X.dtype.name)(X, *args)


def _load_compiled() -> Callable:
    cached = _configure_cache()
    if not (cached and _has_cache()):
        _notice()
    return _Compiled(cached)


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
