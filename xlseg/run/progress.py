"""Progress bars on stderr for the long steps, via tqdm.

The engine reports ``progress(step, done, total)``; this turns those calls into
one tqdm bar per step. Bars are off with ``--quiet`` and when stderr is not a
terminal, so logs and pipes stay clean. tqdm is imported with the first bar:
the command's refusals and ``--help`` do not pay its tenth of a second.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tqdm import tqdm

STEP_LABELS = {
    "gap": "gap statistic references",
    "stability": "gap stability seeds",
    "methods": "clustering methods",
    "batch": "workbooks",
}


class ProgressBars:
    """Callable ``(step, done, total)`` that keeps one bar per step."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._bars: dict[str, tqdm] = {}

    def __call__(self, step: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        bar = self._bars.get(step)
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total, desc=STEP_LABELS.get(step, step), file=sys.stderr, leave=False)
            self._bars[step] = bar
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
            del self._bars[step]

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
