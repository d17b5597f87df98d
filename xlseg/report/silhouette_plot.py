"""The per-customer silhouette plot, drawn with matplotlib as PNG bytes.

Excel has no native chart for a silhouette plot (thousands of sorted bars in
groups), so the report carries it as a picture. It is drawn with the Agg
backend on a `Figure` of its own, without pyplot, so it needs no display, keeps
no global state between calls, and gives the same bytes for the same input.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from xlseg.engine.user_cache import temp_folder, writable_folder

MAX_BAR_POINTS = 2_000
"""Most outline points drawn for all segments together.

A segment of ``n`` customers is drawn from its sorted silhouettes at
``n * MAX_BAR_POINTS / total`` evenly spaced ranks (quantiles), still spanning
``n`` rows of the plot; the outline therefore looks as with every customer
drawn, and 100,000 customers plot as fast as 2,000. Below the limit every
customer is drawn.
"""

# Kaufman & Rousseeuw (1990) bands of the mean silhouette: (low, high, label, colour).
_BANDS = (
    (0.00, 0.25, "no structure", None),
    (0.25, 0.50, "weak", "#FFF2CC"),
    (0.50, 0.70, "reasonable", "#E2EFDA"),
    (0.70, 1.00, "strong", "#C6E0B4"),
)


def silhouette_plot_png(
    silhouettes: np.ndarray,
    segments: np.ndarray,
    *,
    names: Mapping[int, str] | None = None,
    colours: Mapping[int, str] | None = None,
    title: str = "Silhouette of each customer",
    size: tuple[int, int] = (800, 560),
    dpi: int = 100,
    max_points: int = MAX_BAR_POINTS,
) -> bytes:
    """Draw each segment's silhouettes as sorted horizontal bars.

    Parameters
    ----------
    silhouettes : array of float, shape (n,)
        Silhouette of each customer; NaN (not sampled) are left out.
    segments : array of int, shape (n,)
        Segment number of each customer; numbers below 1 (noise, which has no
        silhouette of its own) are left out.
    names : mapping of int to str, optional
        Label of each segment number, drawn beside its group.
    colours : mapping of int to str, optional
        ``"#RRGGBB"`` of each segment number; matplotlib's cycle otherwise.
    title : str
        Plot title.
    size : (int, int)
        Width and height of the image in pixels.
    dpi : int
        Resolution, which sets the size of the text relative to the image.
    max_points : int
        See `MAX_BAR_POINTS`.

    Returns
    -------
    bytes
        A PNG image of exactly ``size`` pixels.

    Notes
    -----
    The shaded bands are Kaufman & Rousseeuw's reading of the *mean*
    silhouette (weak 0.26-0.50, reasonable 0.51-0.70, strong above 0.70); the
    dashed line is the mean over the customers drawn.
    """
    silhouettes = np.asarray(silhouettes, dtype=float)
    segments = np.asarray(segments)
    if silhouettes.shape != segments.shape or silhouettes.ndim != 1:
        raise ValueError("silhouettes and segments must be 1-d arrays of the same length")
    if max_points < 1:
        raise ValueError("max_points must be at least 1")
    names = dict(names or {})
    colours = dict(colours or {})

    keep = np.isfinite(silhouettes) & (segments >= 1)
    values, groups = silhouettes[keep], segments[keep].astype(int)
    total = values.size

    # Imported here: matplotlib takes about half a second to import, which
    # every importer of the report package would otherwise pay.
    _matplotlib_config()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for low, high, label, colour in _BANDS:
        if colour is not None:
            axes.axvspan(low, high, color=colour, zorder=0)
        axes.text(
            (low + high) / 2,
            1.0,
            label,
            transform=axes.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=8,
            color="#595959",
        )

    gap = max(2.0, 0.02 * total)
    y = 0.0
    for i, number in enumerate(np.unique(groups)):
        ranked = np.sort(values[groups == number])[::-1]
        n = ranked.size
        points = max(2, round(max_points * n / total))
        if n > points:
            ranks = np.linspace(0.0, n - 1.0, points)
            ranked = np.interp(ranks, np.arange(n), ranked)
        else:
            ranks = np.arange(n, dtype=float)
        colour = colours.get(int(number), f"C{i % 10}")
        axes.fill_betweenx(
            y + ranks,
            0.0,
            ranked,
            color=colour,
            linewidth=0.3,
            edgecolor=colour,
            step="mid" if n <= points else None,
            zorder=2,
        )
        label = names.get(int(number), f"Segment {number}")
        axes.text(
            -0.02,
            y + (n - 1) / 2,
            f"{label} ({n:,})",
            ha="right",
            va="center",
            fontsize=8,
            transform=axes.get_yaxis_transform(),
            clip_on=False,
        )
        y += n + gap

    if total:
        mean = float(values.mean())
        axes.axvline(
            mean, color="#C00000", linestyle="--", linewidth=1.2, zorder=3, label=f"mean {mean:.3f}"
        )
        axes.legend(loc="lower right", fontsize=8, frameon=True)
        low = min(-0.1, float(values.min()) - 0.05)
    else:
        axes.text(0.5, 0.5, "no silhouettes to draw", transform=axes.transAxes, ha="center")
        low = -0.1
    axes.axvline(0.0, color="#404040", linewidth=0.8, zorder=3)
    axes.set_xlim(low, 1.0)
    axes.set_ylim(max(y - gap, 1.0), -gap / 2)
    axes.set_yticks([])
    axes.set_xlabel("Silhouette")
    axes.set_title(title, fontsize=11, pad=16)
    figure.subplots_adjust(left=0.24, right=0.97, top=0.88, bottom=0.10)

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def _matplotlib_config() -> None:
    """Give matplotlib a writable config folder before its first import.

    Its default (``$XDG_CONFIG_HOME/matplotlib`` or ``~/.config/matplotlib``;
    ``~/.matplotlib`` off Linux) does not exist for an account without a home,
    and matplotlib then warns on every run; ``MPLCONFIGDIR`` set by the user
    is left alone.
    """
    if "MPLCONFIGDIR" in os.environ or "matplotlib" in sys.modules:
        return
    try:
        home = Path.home()
    except RuntimeError:
        home = None
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if sys.platform.startswith("linux"):
        default = Path(xdg) / "matplotlib" if xdg else home and home / ".config" / "matplotlib"
    else:
        default = home and home / ".matplotlib"
    if default is not None and writable_folder([default]) is not None:
        return
    folder = writable_folder([temp_folder("matplotlib")])
    if folder is not None:
        os.environ["MPLCONFIGDIR"] = str(folder)
