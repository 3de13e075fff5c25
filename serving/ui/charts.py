"""Charts as server-rendered SVG: no JavaScript, no CDN, readable by screen readers (``role="img"`` + title).

Every mark carries ``data-label`` and ``data-value`` with the exact number it draws, so the browser tests can
check a chart against the API. Colours come from the stylesheet (classes), not inline styles: the page's
Content-Security-Policy allows no inline style.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

Fmt = Callable[[float], str]


def number(value: float | None, digits: int = 0) -> str:
    """Return ``value`` with thousands separators (``1,234.5``); an en dash for ``None``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"


def money(value: float | None, currency: str = "$", digits: int = 0) -> str:
    """Return ``$1,234`` (negative as ``−$12``); an en dash for ``None``."""
    if value is None:
        return "–"
    sign = "−" if value < 0 else ""
    return f"{sign}{currency}{abs(value):,.{digits}f}"


def short_money(value: float, currency: str = "$") -> str:
    """Return a compact amount for axis labels: ``$950``, ``$2k``, ``$1.5M``."""
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{currency}{value / div:,.{0 if value % div == 0 else 1}f}{suffix}"
    return f"{currency}{value:,.0f}"


def age(hours: float) -> str:
    """Return a duration in hours as ``12 min``, ``5.2 h`` or ``3.1 days``."""
    if hours < 1:
        return f"{max(hours * 60, 0):.0f} min"
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def pct(value: float | None, digits: int = 0) -> str:
    """Return a fraction as a percentage (``0.123`` → ``12%``)."""
    return "–" if value is None else f"{100 * value:.{digits}f}%"


@dataclass(frozen=True)
class Bar:
    """One bar: its label, value and optional shown text (defaults to the formatted value)."""

    label: str
    value: float
    text: str | None = None


def _svg(width: int, height: int, title: str, body: str, cls: str = "chart") -> Markup:
    t = escape(title)
    return Markup(
        f'<svg class="{cls}" viewBox="0 0 {width} {height}" role="img" aria-label="{t}" '
        f'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>{body}</svg>'
    )


def hbars(bars: Sequence[Bar], title: str, fmt: Fmt = number, *, width: int = 560, label_w: int = 150) -> Markup:
    """Return horizontal bars (funnels, tiers, segments): label left, bar, value right."""
    row = 30
    height = max(row * len(bars) + 10, 40)
    top = max((b.value for b in bars), default=0) or 1
    plot = width - label_w - 90
    parts = []
    for i, bar in enumerate(bars):
        y = 5 + i * row
        w = max(plot * bar.value / top, 1 if bar.value else 0)
        label, shown = escape(bar.label), escape(bar.text or fmt(bar.value))
        parts.append(
            f'<g class="mark" data-label="{label}" data-value="{bar.value}">'
            f'<text class="lbl" x="{label_w - 8}" y="{y + 19}" text-anchor="end">{label}</text>'
            f'<rect class="bar" x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row - 10}" rx="3"/>'
            f'<text class="val" x="{label_w + w + 6:.1f}" y="{y + 19}">{shown}</text></g>'
        )
    return _svg(width, height, title, "".join(parts), cls="chart hbars")


def vbars(
    bars: Sequence[Bar], title: str, fmt: Fmt = number, *, width: int = 560, height: int = 220, rotate: bool = False
) -> Markup:
    """Return vertical bars with labels below (histograms, monthly counts)."""
    pad_l, pad_b, pad_t = (40, 64, 20) if rotate else (8, 28, 20)
    n = max(len(bars), 1)
    step = (width - pad_l * 2) / n
    top = max((b.value for b in bars), default=0) or 1
    plot_h = height - pad_b - pad_t
    parts = [f'<line class="axis" x1="{pad_l}" y1="{height - pad_b}" x2="{width - pad_l}" y2="{height - pad_b}"/>']
    for i, bar in enumerate(bars):
        h = max(plot_h * bar.value / top, 1 if bar.value else 0)
        x = pad_l + i * step
        y = height - pad_b - h
        label, shown = escape(bar.label), escape(bar.text or fmt(bar.value))
        lx, ly = x + step / 2, height - pad_b + 14
        lbl = (
            f'<text class="tick" x="{lx:.1f}" y="{ly}" text-anchor="end" '
            f'transform="rotate(-35 {lx:.1f} {ly})">{label}</text>'
            if rotate
            else f'<text class="tick" x="{lx:.1f}" y="{ly}" text-anchor="middle">{label}</text>'
        )
        parts.append(
            f'<g class="mark" data-label="{label}" data-value="{bar.value}">'
            f'<rect class="bar" x="{x + step * 0.12:.1f}" y="{y:.1f}" width="{step * 0.76:.1f}" '
            f'height="{h:.1f}" rx="2"><title>{label}: {shown}</title></rect>'
            f'<text class="val small" x="{lx:.1f}" y="{y - 4:.1f}" text-anchor="middle">'
            f"{shown if n <= 16 else ''}</text>"
            f"{lbl}</g>"
        )
    return _svg(width, height, title, "".join(parts))


def lines(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    title: str,
    fmt: Fmt = number,
    *,
    width: int = 560,
    height: int = 220,
    every: int = 1,
    styles: Sequence[int] | None = None,
) -> Markup:
    """Return a line chart of one or more series over shared x labels, with a legend (series ``s0``, ``s1`` …;
    ``styles`` picks each series' style number instead, e.g. 3 for a dashed warning line)."""
    pad_l, pad_r, pad_t, pad_b = 64, 12, 26, 30
    values = [v for _, ys in series for v in ys if v is not None]
    lo, hi = min([0.0, *values]), max([0.0, *values]) or 1.0
    n = max(len(labels), 1)
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b

    def xy(i: int, v: float) -> tuple[float, float]:
        x = pad_l + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)
        return x, pad_t + plot_h * (1 - (v - lo) / (hi - lo or 1))

    parts = [
        f'<line class="axis" x1="{pad_l}" y1="{pad_t + plot_h}" x2="{width - pad_r}" y2="{pad_t + plot_h}"/>',
        f'<text class="tick" x="{pad_l - 6}" y="{pad_t + 4}" text-anchor="end">{escape(fmt(hi))}</text>',
        f'<text class="tick" x="{pad_l - 6}" y="{pad_t + plot_h}" text-anchor="end">{escape(fmt(lo))}</text>',
    ]
    for i, label in enumerate(labels):
        if i % every == 0 or i == n - 1:
            x, _ = xy(i, lo)
            anchor = "end" if i == n - 1 and n > 1 else "middle"
            parts.append(
                f'<text class="tick" x="{x:.1f}" y="{height - 10}" text-anchor="{anchor}">{escape(label)}</text>'
            )
    for k, (name, ys) in enumerate(series):
        s = styles[k] if styles else k
        pts = [xy(i, v) for i, v in enumerate(ys) if v is not None]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        parts.append(f'<polyline class="line s{s}" points="{path}" fill="none"/>')
        for i, v in enumerate(ys):
            if v is None:
                continue
            x, y = xy(i, v)
            lbl = escape(f"{name} {labels[i]}")
            parts.append(
                f'<circle class="dot s{s}" cx="{x:.1f}" cy="{y:.1f}" r="3" data-label="{lbl}" data-value="{v}">'
                f"<title>{lbl}: {escape(fmt(v))}</title></circle>"
            )
        parts.append(f'<rect class="key s{s}" x="{pad_l + 130 * k}" y="4" width="12" height="12" rx="2"/>')
        parts.append(f'<text class="tick" x="{pad_l + 130 * k + 17}" y="14">{escape(name)}</text>')
    return _svg(width, height, title, "".join(parts))


def grid(
    rows: Sequence[str],
    cols: Sequence[str],
    cells: Sequence[Sequence[tuple[float | None, str, str]]],
    title: str,
    *,
    row_title: str,
    col_title: str,
    width: int = 560,
    cell_h: int = 46,
) -> Markup:
    """Return a heat grid: ``cells[r][c] = (intensity 0..1 or None, main text, small text)``."""
    label_w, head_h = 96, 40
    cell_w = (width - label_w) / max(len(cols), 1)
    height = head_h + cell_h * len(rows) + 6
    parts = [
        f'<text class="tick" x="{label_w + (width - label_w) / 2:.1f}" y="12" text-anchor="middle">'
        f"{escape(col_title)}</text>",
        f'<text class="tick" x="4" y="12">{escape(row_title)}</text>',
    ]
    for c, col in enumerate(cols):
        parts.append(
            f'<text class="tick" x="{label_w + cell_w * (c + 0.5):.1f}" y="{head_h - 8}" text-anchor="middle">'
            f"{escape(col)}</text>"
        )
    for r, row in enumerate(rows):
        y = head_h + r * cell_h
        parts.append(
            f'<text class="lbl" x="{label_w - 8}" y="{y + cell_h / 2 + 5:.1f}" text-anchor="end">{escape(row)}</text>'
        )
        for c, (level, main, small) in enumerate(cells[r]):
            x = label_w + c * cell_w
            heat = "none" if level is None else str(min(int(level * 5), 4))
            parts.append(
                f'<g class="mark cell" data-label="{escape(row)} / {escape(cols[c])}" data-value="{escape(main)}">'
                f'<rect class="heat h{heat}" x="{x + 1:.1f}" y="{y + 1}" width="{cell_w - 2:.1f}" '
                f'height="{cell_h - 2}" rx="3"/>'
                f'<text class="cellv{" dark" if heat in ("3", "4") else ""}" x="{x + cell_w / 2:.1f}" y="{y + 20}" '
                f'text-anchor="middle">{escape(main)}</text>'
                f'<text class="cells{" dark" if heat in ("3", "4") else ""}" x="{x + cell_w / 2:.1f}" y="{y + 36}" '
                f'text-anchor="middle">{escape(small)}</text></g>'
            )
    return _svg(width, height, title, "".join(parts))


def progress(pct_done: float, title: str, *, width: int = 300) -> Markup:
    """Return a progress bar (tier progress): ``pct_done`` in 0..100."""
    w = width * max(0.0, min(pct_done, 100.0)) / 100
    body = (
        f'<rect class="track" x="0" y="0" width="{width}" height="12" rx="6"/>'
        f'<rect class="bar" x="0" y="0" width="{w:.1f}" height="12" rx="6" data-value="{pct_done}"/>'
    )
    return _svg(width, 12, title, body, cls="chart progress")
