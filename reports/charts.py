"""Charts as SVG `data:` URLs, drawn by matplotlib without a browser or display.

WeasyPrint draws an SVG element by element, and each element costs it far more than
its ink: a cascade of its attributes, a graphics state, often a clip path. So a bar
chart is drawn from a few dozen elements instead of matplotlib's usual few hundred (a
patch per bar, per tick a mark, a grid line and a label, each in its own group and
clipped): the bars are one path, the grid lines one path, the tick marks one path per
axis, the two spines one path, and each label one `<text>`, start-anchored (WeasyPrint
puts a middle- or end-anchored text in a PDF object of its own). Text stays text
(`svg.fonttype: none`): searchable, accessible and small. The figure is laid out once,
from the labels' measured sizes, instead of drawn twice for `bbox_inches="tight"`; the
axes keep the size matplotlib's default subplot gives them, so a chart takes the same
room on the page as before. `_compact_svg` then drops what matplotlib writes that
WeasyPrint has no use for (metadata, wrapper groups, unused ids, zero rotations, a `*`
style rule); line charts get that step too.
"""

from __future__ import annotations

import functools
import io
import math
import re
import threading
from base64 import b64encode
from collections.abc import Sequence
from dataclasses import dataclass
from xml.etree import ElementTree
from xml.sax.saxutils import escape, quoteattr

import matplotlib

matplotlib.use("Agg")
from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import RendererSVG
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import PathPatch
from matplotlib.path import Path
from matplotlib.textpath import text_to_path
from matplotlib.ticker import ScalarFormatter
from matplotlib.transforms import Bbox

_STYLE = {
    "svg.fonttype": "none",  # keep text as text: searchable, accessible, smaller
    "svg.hashsalt": "reportrunner",  # stable ids so unchanged data gives the same SVG
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_COLOR = "#1f5f99"
_NO_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}

# Bar chart geometry, in points, as matplotlib's defaults draw it.
_PAD = 7.2  # around the drawing: savefig's pad_inches (0.1 in) with bbox_inches="tight"
_TICK = 3.5  # tick mark length, outwards
_TICK_PAD = 3.5  # tick mark to its label
_LABEL_PAD = 4.0  # tick labels to the axis label
_BAR_WIDTH = 0.8
_CLOSE = 1e-10  # tick at a view limit: matplotlib's tolerance for drawing it


@dataclass(frozen=True)
class Chart:
    title: str
    alt: str  # text alternative: what a screen reader says instead of the picture
    data_url: str


def _to_chart(
    fig: Figure, title: str, alt: str, *, tight: bool, labels: Sequence[str] = ()
) -> Chart:
    buffer = io.BytesIO()
    with matplotlib.rc_context(_STYLE):
        fig.savefig(
            buffer, format="svg", bbox_inches="tight" if tight else None, metadata=_NO_METADATA
        )
    svg = _compact_svg(buffer.getvalue())
    if labels:  # drawn last, on top, inside the root element
        end = svg.rindex(b"</svg>")
        svg = svg[:end] + "".join(labels).encode("utf-8") + svg[end:]
    encoded = b64encode(svg).decode("ascii")
    return Chart(title=title, alt=alt, data_url=f"data:image/svg+xml;base64,{encoded}")


def bar_chart(
    labels: Sequence[str | int],
    values: Sequence[float],
    *,
    title: str,
    alt: str,
    xlabel: str = "",
    ylabel: str = "",
    size: tuple[float, float] = (6.5, 2.1),
) -> Chart:
    # Whole numbers (days, years) get a numeric axis with readable ticks; the rest
    # are categories, one label per bar.
    numeric = bool(labels) and all(isinstance(label, int) for label in labels)
    positions = [float(label) for label in labels] if numeric else [*map(float, range(len(labels)))]
    with matplotlib.rc_context(_STYLE):
        fig, ax, box = _blank_axes(size)
        frame = _Frame(ax, box.width * size[0] * 72, box.height * size[1] * 72)
        bars = _bars(positions, values)
        if bars is not None:
            patch = PathPatch(bars, facecolor=_COLOR, edgecolor="none", linewidth=0, zorder=1)
            patch.sticky_edges.y.append(0)  # as ax.bar: no margin below a zero baseline
            patch.set_clip_on(False)
            ax.add_patch(patch)
        half = _BAR_WIDTH / 2  # every bar's slot, drawn or not, and the zero line
        ax.update_datalim(
            [(min(positions) - half, 0), (max(positions) + half, 0)] if positions else [(0, 0)]
        )
        ax.autoscale_view()
        if numeric or not labels:
            xticks = _ticks(ax.xaxis, ax.get_xlim())
            xtick_labels = _tick_labels(ax.xaxis, xticks)
        else:
            xticks, xtick_labels = positions, [str(label) for label in labels]
        yticks = _ticks(ax.yaxis, ax.get_ylim())
        frame.fit(xticks, xtick_labels, yticks, _tick_labels(ax.yaxis, yticks), xlabel, ylabel)
        frame.draw()
        if not labels:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        return _to_chart(fig, title, alt, tight=False, labels=frame.labels)


_figures = threading.local()


def _blank_axes(size: tuple[float, float]) -> tuple[Figure, Axes, Bbox]:
    """This thread's figure of this size with its default subplot, emptied for a chart.

    Creating them (the Axes makes axis, tick, spine and title objects, none of which a
    bar chart draws) took 40 % of a chart; they are kept per thread and size instead,
    and what the previous chart added is removed. The subplot's box is returned too:
    a chart moves it and resizes the figure, and starts again from the box.
    """
    cache = getattr(_figures, "cache", None)
    if cache is None:
        cache = _figures.cache = {}
    key = (float(size[0]), float(size[1]))
    if key not in cache:
        fig = Figure(figsize=key)
        ax = fig.add_subplot()  # the default subplot: its size in points is kept
        ax.set_axis_off()  # no Axis, tick or spine objects: drawn as few elements instead
        ax.patch.set_visible(False)  # no white rectangles behind the chart
        fig.patch.set_visible(False)
        cache[key] = fig, ax, ax.get_position().frozen()
    fig, ax, box = cache[key]
    for artist in [*ax.patches, *ax.lines, *ax.texts]:
        artist.remove()
    ax.relim()  # no data: the next autoscale sees only the new chart's
    fig.set_size_inches(size)
    ax.set_position(box)
    return fig, ax, box


def _bars(positions: Sequence[float], values: Sequence[float]) -> Path | None:
    """Every bar as one closed sub-path of a single path; bars without a value are left out."""
    vertices: list[tuple[float, float]] = []
    half = _BAR_WIDTH / 2
    for x, value in zip(positions, values, strict=True):
        if value is None or not math.isfinite(value):
            continue
        vertices += [(x - half, 0), (x + half, 0), (x + half, value), (x - half, value), (0, 0)]
    if not vertices:
        return None
    codes = [Path.MOVETO, Path.LINETO, Path.LINETO, Path.LINETO, Path.CLOSEPOLY]
    return Path(vertices, codes * (len(vertices) // 5))


def _ticks(axis, limits: tuple[float, float]) -> list[float]:
    """The major tick positions matplotlib's axis would draw within the view."""
    low, high = sorted(limits)
    slack = _CLOSE * (high - low)
    locs = axis.get_major_locator().tick_values(low, high)
    return [float(t) for t in locs if low - slack <= t <= high + slack]


def _tick_labels(axis, ticks: list[float]) -> list[str]:
    formatter = ScalarFormatter(useOffset=False)  # no offset or ×10ⁿ text to place
    formatter.set_scientific(False)
    axis.set_major_formatter(formatter)  # it reads the view limits from its axis
    return formatter.format_ticks(ticks)


@functools.lru_cache(maxsize=4096)
def _text_size(text: str, font: FontProperties) -> tuple[float, float, float]:
    """Width, height and descent in points, as matplotlib measures text for SVG output
    (and as WeasyPrint draws it: the same DejaVu Sans advances, within 0.1 pt)."""
    return text_to_path.get_text_width_height_descent(text, font, False)


@functools.lru_cache(maxsize=8)
def _line_metrics(family: str, size: float) -> tuple[float, float]:
    """Ascent and descent of a line of text in points, as matplotlib's text layout sets
    them (at least the font's, whatever the glyphs): measured once on a real Text."""
    fig = Figure(dpi=72)
    text = fig.text(0, 0, "x", family=family, size=size, va="baseline")
    box = text.get_window_extent(RendererSVG(100, 100, io.StringIO()))
    return float(box.y1), float(-box.y0)


class _Frame:
    """The axes' decoration, laid out from its labels' sizes and drawn as few elements.

    Sizes are in points. The axes keep their size; the figure grows around them by what
    the labels need plus savefig's tight padding, as `bbox_inches="tight"` would crop it.
    The labels are written as SVG `<text>` here, where matplotlib's own text layout
    would put them (its metrics and alignment rules, as `Text._get_layout` applies
    them); drawing them as matplotlib Text artists took half the time of a chart.
    """

    def __init__(self, ax, width: float, height: float) -> None:
        self.ax, self.width, self.height = ax, width, height
        self.font = FontProperties(size=matplotlib.rcParams["font.size"])
        self.ascent, self.descent = _line_metrics(_STYLE["font.family"], self.font.get_size())
        self.line = self.ascent + self.descent  # a label's height
        self.labels: list[str] = []

    def fit(self, xticks, xtick_labels, yticks, ytick_labels, xlabel, ylabel) -> None:
        self.xticks, self.xtick_labels = xticks, xtick_labels
        self.yticks, self.ytick_labels = yticks, ytick_labels
        self.xlabel, self.ylabel = xlabel, ylabel
        out = _TICK + _TICK_PAD  # from the spine to the tick labels
        self.widest_y = max((_text_size(s, self.font)[0] for s in ytick_labels), default=0.0)
        self.xtick_h = self.line if xtick_labels else 0.0
        left = _PAD + out + self.widest_y + (_LABEL_PAD + self.line if ylabel else 0.0)
        bottom = _PAD + out + self.xtick_h + (_LABEL_PAD + self.line if xlabel else 0.0)
        top_tick = max((self._y(t) for t in yticks), default=0.0)
        top = _PAD + max(0.0, top_tick + self.line / 2 - self.height)
        right = _PAD
        if xticks:
            last = max(range(len(xticks)), key=xticks.__getitem__)
            end = self._x(xticks[last]) + _text_size(xtick_labels[last], self.font)[0] / 2
            right += max(0.0, end - self.width)
        self.left, self.bottom = left, bottom
        self.figure_h = self.height + top + bottom
        width = self.width + left + right
        self.ax.figure.set_size_inches(width / 72, self.figure_h / 72)
        self.ax.set_position(
            (left / width, bottom / self.figure_h, self.width / width, self.height / self.figure_h)
        )

    def _x(self, value: float) -> float:
        """A data x as points from the axes' left edge."""
        x0, x1 = self.ax.get_xlim()
        return (value - x0) / (x1 - x0) * self.width

    def _y(self, value: float) -> float:
        """A data y as points above the axes' bottom edge."""
        y0, y1 = self.ax.get_ylim()
        return (value - y0) / (y1 - y0) * self.height

    def draw(self) -> None:
        """Grid, zero line, spines, tick marks and labels: one element each, or per label."""
        ax, nan = self.ax, float("nan")
        on_x, on_y = ax.get_xaxis_transform(), ax.get_yaxis_transform()
        tick_x, tick_y = _TICK / self.height, _TICK / self.width  # in axes fractions
        if self.yticks:  # horizontal grid lines, below the bars
            ax.add_line(
                Line2D(
                    [v for _ in self.yticks for v in (0, 1, nan)],
                    [v for t in self.yticks for v in (t, t, nan)],
                    transform=on_y,
                    color="#ddd",
                    linewidth=0.5,
                    zorder=0.5,
                    clip_on=False,
                )
            )
        low, high = sorted(ax.get_ylim())
        if low <= 0 <= high:
            ax.add_line(
                Line2D(
                    [0, 1],
                    [0, 0],
                    transform=on_y,
                    color="#555",
                    linewidth=0.6,
                    solid_capstyle="butt",
                    zorder=2,
                    clip_on=False,
                )
            )
        ax.add_line(  # the left and bottom spines, one stroke
            Line2D(
                [0, 0, 1],
                [1, 0, 0],
                transform=ax.transAxes,
                color="black",
                linewidth=0.8,
                solid_joinstyle="miter",
                zorder=2.5,
                clip_on=False,
            )
        )
        marks = {"color": "black", "linewidth": 0.8, "solid_capstyle": "butt", "zorder": 2.5}
        if self.xticks:
            ax.add_line(
                Line2D(
                    [v for t in self.xticks for v in (t, t, nan)],
                    [v for _ in self.xticks for v in (0, -tick_x, nan)],
                    transform=on_x,
                    clip_on=False,
                    **marks,
                )
            )
        if self.yticks:
            ax.add_line(
                Line2D(
                    [v for _ in self.yticks for v in (0, -tick_y, nan)],
                    [v for t in self.yticks for v in (t, t, nan)],
                    transform=on_y,
                    clip_on=False,
                    **marks,
                )
            )
        out = _TICK + _TICK_PAD
        for t, text in zip(self.xticks, self.xtick_labels, strict=True):
            self._label(self._x(t), -out, text, ha=0.5, va="top")
        for t, text in zip(self.yticks, self.ytick_labels, strict=True):
            self._label(-out, self._y(t), text, ha=1.0, va="center_baseline")
        if self.xlabel:
            below = -(out + self.xtick_h + _LABEL_PAD)
            self._label(self.width / 2, below, self.xlabel, ha=0.5, va="top")
        if self.ylabel:
            aside = -(out + self.widest_y + _LABEL_PAD)
            self._label(aside, self.height / 2, self.ylabel, ha=0.5, va="bottom", up=True)

    def _label(self, x: float, y: float, text: str, *, ha: float, va: str, up=False) -> None:
        """One `<text>` anchored at (x, y), points from the axes' bottom left corner.

        `ha` is the fraction of the width left of the anchor; `va` one of matplotlib's
        vertical alignments. The text is written start-anchored at its measured start:
        WeasyPrint puts each middle- or end-anchored text in a PDF object of its own.
        """
        width, height, descent = _text_size(text, self.font)
        ascent, descent = max(height - descent, self.ascent), max(descent, self.descent)
        # from the anchor to the baseline, along the text's up
        rise = {"top": -ascent, "center_baseline": -ascent / 2, "bottom": descent}[va]
        if up:  # rotated a quarter turn anticlockwise: up is to the left
            x, y = x - rise, y - ha * width
        else:
            x, y = x - ha * width, y + rise
        x, y = self.left + x, self.figure_h - (self.bottom + y)  # SVG: from the top left
        at = f'x="{_number(x)}" y="{_number(y)}"'
        turn = f' transform="rotate(-90 {_number(x)} {_number(y)})"' if up else ""
        self.labels.append(
            f'<text {at}{turn} font-size="{_number(self.font.get_size_in_points())}px"'
            f" font-family=\"'{_STYLE['font.family']}'\">{escape(text)}</text>"
        )


def _number(value: float) -> str:
    """As matplotlib writes SVG coordinates: up to six decimals, no trailing zeros."""
    return f"{value:f}".rstrip("0").rstrip(".")


def line_chart(
    x: Sequence[float | int | str],
    series: dict[str, Sequence[float]],
    *,
    title: str,
    alt: str,
    xlabel: str = "",
    ylabel: str = "",
    size: tuple[float, float] = (6.5, 2.1),
) -> Chart:
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=size)
        ax = fig.add_subplot()
        for label, values in series.items():
            ax.plot(list(x), list(values), label=label, linewidth=1.2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(color="#ddd", linewidth=0.5)
        if len(series) > 1:
            ax.legend(frameon=False)
        if not len(x):
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        return _to_chart(fig, title, alt, tight=True)


# -- SVG compaction ----------------------------------------------------------------------------

_SVG_NS = "{http://www.w3.org/2000/svg}"
_PREFIXES = {
    "{http://www.w3.org/1999/xlink}": "xlink:",
    "{http://www.w3.org/XML/1998/namespace}": "xml:",
}
_ZERO_ROTATION = re.compile(r"rotate\(-?0(?:\.0*)?(?: [^)]*)?\)")
_REFERENCE = re.compile(rb'url\(#([^)]+)\)|href="#([^"]+)"')


def _compact_svg(svg: bytes) -> bytes:
    """The same drawing with fewer elements and attributes for WeasyPrint to cascade.

    Drops metadata, groups that only carry an id, ids nothing refers to and zero
    rotations; turns `style` declarations into presentation attributes and the one
    stylesheet matplotlib writes (`*{stroke-linejoin: round; stroke-linecap: butt}`)
    into the same attributes on the root, from which every element inherits them.
    """
    root = ElementTree.fromstring(svg)
    referenced = {a or b for a, b in (m.groups() for m in _REFERENCE.finditer(svg))}
    referenced = {r.decode() for r in referenced}
    inherited: dict[str, str] = {}
    for style in root.iter(f"{_SVG_NS}style"):
        match = re.fullmatch(r"\s*\*\s*\{([^}]*)\}\s*", style.text or "")
        if match is None:
            return svg  # a stylesheet this does not understand: leave the SVG as it is
        inherited.update(_declarations(match.group(1)))
    out: list[str] = []
    _write(root, out, referenced, inherited)
    return "".join(out).encode("utf-8")


def _declarations(style: str) -> dict[str, str]:
    pairs = (part.split(":", 1) for part in style.split(";") if ":" in part)
    return {name.strip(): value.strip() for name, value in pairs}


def _write(node, out: list[str], referenced: set[str], inherited: dict[str, str]) -> None:
    tag = node.tag.removeprefix(_SVG_NS)
    if tag in ("metadata", "style"):
        return
    attrib = dict(node.attrib)
    if attrib.get("id") not in referenced:
        attrib.pop("id", None)
    if tag == "g" and not attrib:
        for child in node:
            _write(child, out, referenced, {})
        return
    if tag == "defs" and all(child.tag.removeprefix(_SVG_NS) == "style" for child in node):
        return
    if "style" in attrib:  # a declaration outranks a presentation attribute
        attrib.update(_declarations(attrib.pop("style")))
    if _ZERO_ROTATION.fullmatch(attrib.get("transform", "")):
        del attrib["transform"]
    if tag == "svg":
        attrib = {**inherited, **attrib}
        attrib["xmlns"] = "http://www.w3.org/2000/svg"
        attrib["xmlns:xlink"] = "http://www.w3.org/1999/xlink"
    out.append(f"<{tag}")
    for name, value in attrib.items():
        if name.startswith("{"):
            namespace, local = name[1:].split("}", 1)
            name = _PREFIXES.get(f"{{{namespace}}}", "") + local
        out.append(f" {name}={quoteattr(value)}")
    children = list(node)
    if not children and not node.text:
        out.append("/>")
        return
    out.append(">")
    if node.text and (node.text.strip() or tag in ("text", "tspan")):
        out.append(escape(node.text))
    for child in children:
        _write(child, out, referenced, {})
        if child.tail and child.tail.strip():
            out.append(escape(child.tail))
    out.append(f"</{tag}>")
