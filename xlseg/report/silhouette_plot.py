"""The per-customer silhouette plot, drawn with Pillow as PNG bytes.

Excel has no native chart for a silhouette plot (thousands of sorted bars in
groups), so the report carries it as a picture. The plot is nothing but
rectangles, lines and a little text, so it is drawn with Pillow's
``ImageDraw`` and its bundled font: importing Pillow takes a few hundredths
of a second where matplotlib took about 0.6 s of every run, and Pillow needs
no configuration folder, so a run by an account without a home draws it too.
The same input gives the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np

MAX_BAR_POINTS = 2_000
"""Most bars drawn for all segments together.

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

# Colours of segments without one of their own (matplotlib's default cycle).
_CYCLE = (
    "#1F77B4",
    "#FF7F0E",
    "#2CA02C",
    "#D62728",
    "#9467BD",
    "#8C564B",
    "#E377C2",
    "#7F7F7F",
    "#BCBD22",
    "#17BECF",
)
_INK, _GREY, _MEAN = "#404040", "#595959", "#C00000"
# The plot area as shares of the picture: left, top, right, bottom.
_AREA = (0.24, 0.12, 0.97, 0.90)


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
        ``"#RRGGBB"`` of each segment number; a fixed cycle otherwise.
    title : str
        Plot title.
    size : (int, int)
        Width and height of the image in pixels.
    dpi : int
        Resolution, which sets the size of the text relative to the image
        (points, as in a chart: 8-point labels are 11 pixels at 100 dpi).
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
    if min(size) < 100 or dpi < 10:
        raise ValueError("the picture must be at least 100 x 100 pixels at 10 dpi or more")
    names = dict(names or {})
    colours = dict(colours or {})

    keep = np.isfinite(silhouettes) & (segments >= 1)
    values, groups = silhouettes[keep], segments[keep].astype(int)
    total = values.size

    from PIL import Image, ImageDraw, ImageFont

    def font(points: float) -> ImageFont.FreeTypeFont:
        return ImageFont.load_default(size=max(6, round(points * dpi / 72)))

    small, normal, large = font(8), font(10), font(11)
    image = Image.new("RGB", size, "white")
    draw = _Draw(ImageDraw.Draw(image))
    left, top = round(_AREA[0] * size[0]), round(_AREA[1] * size[1])
    right, bottom = round(_AREA[2] * size[0]), round(_AREA[3] * size[1])

    gap = max(2.0, 0.02 * total)
    heights = [int(np.sum(groups == number)) for number in np.unique(groups)]
    rows_end = max(sum(heights) + gap * (len(heights) - 1), 1.0)
    low = min(-0.1, float(values.min()) - 0.05) if total else -0.1

    def x_pixel(value: float) -> float:
        return left + (value - low) / (1.0 - low) * (right - left)

    def y_pixel(row: float) -> float:
        return top + (row + gap / 2) / (rows_end + gap / 2) * (bottom - top)

    for band_low, band_high, label, colour in _BANDS:
        if colour is not None:
            draw.rectangle((x_pixel(band_low), top, x_pixel(band_high), bottom), fill=colour)
        middle = x_pixel((band_low + band_high) / 2)
        draw.text((middle, top - 2), label, fill=_GREY, font=small, anchor="mb")

    y = 0.0
    for i, (number, n) in enumerate(zip(np.unique(groups), heights, strict=True)):
        ranked = np.sort(values[groups == number])[::-1]
        points = max(2, round(max_points * n / total))
        ranks = np.arange(n, dtype=float)
        if n > points:
            ranks = np.linspace(0.0, n - 1.0, points)
            ranked = np.interp(ranks, np.arange(n), ranked)
        # Each bar reaches halfway to its neighbours, so the bars tile the group's rows.
        edges = np.concatenate([[ranks[0] - 0.5], (ranks[1:] + ranks[:-1]) / 2, [ranks[-1] + 0.5]])
        colour = colours.get(int(number), _CYCLE[i % len(_CYCLE)])
        zero = x_pixel(0.0)
        for value, upper, lower in zip(ranked, edges[:-1], edges[1:], strict=True):
            end = x_pixel(float(value))
            draw.rectangle(
                (min(zero, end), y_pixel(y + upper), max(zero, end), y_pixel(y + lower)),
                fill=colour,
            )
        label = f"{names.get(int(number), f'Segment {number}')} ({n:,})"
        draw.text(
            (left - 8, y_pixel(y + (n - 1) / 2)), label, fill="black", font=small, anchor="rm"
        )
        y += n + gap

    draw.line((x_pixel(0.0), top, x_pixel(0.0), bottom), fill=_INK, width=1)
    if total:
        mean = float(values.mean())
        _dashed(draw, x_pixel(mean), top, bottom, _MEAN)
        legend = f"mean {mean:.3f}"
        width = draw.textlength(legend, font=small)
        box = (right - width - 44, bottom - 24, right - 6, bottom - 6)
        draw.rectangle(box, fill="white", outline="#CCCCCC")
        middle = (box[1] + box[3]) / 2
        _dashed(draw, box[0] + 6, middle, middle, _MEAN, horizontal_to=box[0] + 26)
        draw.text((box[0] + 32, middle), legend, fill="black", font=small, anchor="lm")
    else:
        centre = ((left + right) / 2, (top + bottom) / 2)
        draw.text(centre, "no silhouettes to draw", fill="black", font=normal, anchor="mm")

    draw.rectangle((left, top, right, bottom), outline="black", width=1)
    first_tick = np.ceil(low / 0.2 - 1e-9) * 0.2
    for tick in np.arange(first_tick, 1.0 + 1e-9, 0.2):
        x = x_pixel(float(tick))
        draw.line((x, bottom, x, bottom + 4), fill="black", width=1)
        text = f"{tick:.1f}".replace("-0.0", "0.0")
        draw.text((x, bottom + 6), text, fill="black", font=normal, anchor="mt")
    draw.text(
        ((left + right) / 2, bottom + 24), "Silhouette", fill="black", font=normal, anchor="mt"
    )
    draw.text(((left + right) / 2, top - 18), title, fill="black", font=large, anchor="mb")

    buffer = io.BytesIO()
    image.save(buffer, format="PNG", dpi=(dpi, dpi))
    return buffer.getvalue()


class _Draw:
    """Pillow's drawing context, with words spaced for its bundled font.

    That font (Aileron) has a space a fifth of an em wide, which at 8 points
    runs words together; every space is drawn twice.
    """

    def __init__(self, draw) -> None:
        self._draw = draw
        self.line, self.rectangle = draw.line, draw.rectangle

    def text(self, xy, text: str, **options) -> None:
        self._draw.text(xy, text.replace(" ", "  "), **options)

    def textlength(self, text: str, **options) -> float:
        return self._draw.textlength(text.replace(" ", "  "), **options)


def _dashed(draw, x: float, y0: float, y1: float, colour: str, horizontal_to=None) -> None:
    """A dashed line: vertical over y0..y1, or horizontal over x..horizontal_to."""
    dash, space = 5, 3
    if horizontal_to is not None:
        for start in np.arange(x, horizontal_to, dash + space):
            draw.line((start, y0, min(start + dash, horizontal_to), y0), fill=colour, width=2)
        return
    for start in np.arange(y0, y1, dash + space):
        draw.line((x, start, x, min(start + dash, y1)), fill=colour, width=2)
