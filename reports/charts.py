"""Draw the report's charts as inline SVG strings.

Hand-written rather than a plotting library: the report must be one file that
fetches nothing when viewed, and three small chart kinds (lines, bars, a
stacked bar) do not justify a dependency. Each function returns SVG markup
(or an empty-state ``<p>``) and never touches the file system.
"""
import math
from html import escape

FONT = "font-family='system-ui,-apple-system,Segoe UI,sans-serif'"
GRID, AXIS, MUTED, FAULT_COLOR = "#e5e7eb", "#6b7280", "#9ca3af", "#7c3aed"
STATUS_COLORS = {"completed": "#16a34a", "processing": "#f59e0b", "pending": "#94a3b8", "failed": "#dc2626",
                 "unreported": "#cbd5e1"}


def nice_ticks(high, count=5):
    """Return round tick values from 0 up to at least ``high``."""
    if high <= 0:
        return [0, 1]
    raw = high / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [step * i for i in range(int(math.ceil(high / step)) + 1)]


def _tick_label(value):
    return f"{value / 1000:g}s" if value >= 1000 else f"{value:g}"


def line_chart(title, series, width=560, height=220, y_unit="ms", limit=None, empty="no data", bands=()):
    """Return an SVG line chart of ``series`` — ``[(label, color, [(x seconds, y), ...]), ...]``.

    ``limit`` draws a dashed horizontal line labelled as the gate's limit; ``bands``,
    ``[(label, x from, x to)]`` in the series' x, shade a span each (a fault of the nemesis).
    Points whose ``y`` is ``None`` break the line instead of dropping to zero.
    """
    points = [(x, y) for _, _, pts in series for x, y in pts if y is not None]
    if not points:
        return f"<figure class='chart'><figcaption>{escape(title)}</figcaption><p class='empty'>{escape(empty)}</p></figure>"
    left, right, top, bottom = 52, 12, 30, 34
    x0 = min(x for x, _ in points)
    x_max = max(max(x for x, _ in points) - x0, 1)
    y_ticks = nice_ticks(max(max(y for _, y in points), limit or 0) * 1.05)
    y_max = y_ticks[-1]
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(x):
        return left + (x - x0) / x_max * plot_w

    def sy(y):
        return top + plot_h - y / y_max * plot_h

    out = [f"<svg viewBox='0 0 {width} {height}' width='{width}' height='{height}' role='img' {FONT}>",
           f"<text x='{left}' y='18' font-size='13' font-weight='600'>{escape(title)}</text>"]
    for tick in y_ticks:
        out.append(f"<line x1='{left}' x2='{width - right}' y1='{sy(tick):.1f}' y2='{sy(tick):.1f}' stroke='{GRID}'/>")
        out.append(f"<text x='{left - 6}' y='{sy(tick) + 4:.1f}' font-size='10' fill='{AXIS}' "
                   f"text-anchor='end'>{_tick_label(tick)}</text>")
    for tick in nice_ticks(x_max, 6):
        if tick <= x_max:
            out.append(f"<text x='{sx(x0 + tick):.1f}' y='{height - bottom + 14}' font-size='10' fill='{AXIS}' "
                       f"text-anchor='middle'>{tick:g}s</text>")
    out.append(f"<text x='{width - right}' y='{height - 4}' font-size='10' fill='{MUTED}' text-anchor='end'>"
               f"seconds since start · {escape(y_unit)}</text>")
    for label, start, end in bands:
        low, high = max(sx(start), left), min(sx(max(end, start)), width - right)
        if high >= low:
            out.append(f"<rect x='{low:.1f}' y='{top}' width='{max(high - low, 2):.1f}' height='{plot_h}' "
                       f"fill='{FAULT_COLOR}' fill-opacity='0.18'><title>{escape(label)}</title></rect>"
                       f"<text x='{low + 2:.1f}' y='{top + 10}' font-size='9' fill='{FAULT_COLOR}'>{escape(label)}</text>")
    if limit is not None:
        out.append(f"<line x1='{left}' x2='{width - right}' y1='{sy(limit):.1f}' y2='{sy(limit):.1f}' "
                   f"stroke='#dc2626' stroke-dasharray='5 4'/>")
        out.append(f"<text x='{width - right - 2}' y='{sy(limit) - 4:.1f}' font-size='10' fill='#dc2626' "
                   f"text-anchor='end'>limit {_tick_label(limit)}{escape(y_unit)}</text>")
    legend_x = width - right
    for label, color, pts in reversed(series):
        out.append(_polyline(pts, sx, sy, color))
        legend_x -= 8 + 7 * len(label) + 14
        out.append(f"<rect x='{legend_x}' y='10' width='10' height='10' rx='2' fill='{color}'/>"
                   f"<text x='{legend_x + 14}' y='19' font-size='11' fill='#374151'>{escape(label)}</text>")
    out.append("</svg>")
    return "<figure class='chart'>" + "".join(out) + "</figure>"


def _polyline(points, sx, sy, color):
    runs, current = [], []
    for x, y in points:
        if y is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(f"{sx(x):.1f},{sy(y):.1f}")
    if current:
        runs.append(current)
    return "".join(
        f"<polyline points='{' '.join(run)}' fill='none' stroke='{color}' stroke-width='1.8' stroke-linejoin='round'/>"
        if len(run) > 1 else f"<circle cx='{run[0].split(',')[0]}' cy='{run[0].split(',')[1]}' r='2.5' fill='{color}'/>"
        for run in runs)


def histogram(title, bins, width=1120, height=240, limit=None, markers=(), empty="no data"):
    """Return an SVG bar chart of ``bins`` — ``[(low ms, high ms or None, count), ...]``.

    Bars at or above ``limit`` are red, others green; ``markers`` are
    ``(label, ms)`` pairs drawn as ticks over the bars (e.g. the p95).
    """
    if not bins or not any(count for _, _, count in bins):
        return f"<figure class='chart'><figcaption>{escape(title)}</figcaption><p class='empty'>{escape(empty)}</p></figure>"
    left, right, top, bottom = 52, 12, 30, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    ticks = nice_ticks(max(count for _, _, count in bins) * 1.1)
    slot = plot_w / len(bins)
    out = [f"<svg viewBox='0 0 {width} {height}' width='{width}' height='{height}' role='img' {FONT}>",
           f"<text x='{left}' y='18' font-size='13' font-weight='600'>{escape(title)}</text>"]
    for tick in ticks:
        y = top + plot_h - tick / ticks[-1] * plot_h
        out.append(f"<line x1='{left}' x2='{width - right}' y1='{y:.1f}' y2='{y:.1f}' stroke='{GRID}'/>"
                   f"<text x='{left - 6}' y='{y + 4:.1f}' font-size='10' fill='{AXIS}' text-anchor='end'>{tick:g}</text>")
    for i, (low, high, count) in enumerate(bins):
        bar_h = count / ticks[-1] * plot_h
        color = "#dc2626" if limit is not None and low >= limit else "#16a34a"
        x = left + i * slot
        out.append(f"<rect x='{x + 2:.1f}' y='{top + plot_h - bar_h:.1f}' width='{slot - 4:.1f}' "
                   f"height='{bar_h:.1f}' rx='2' fill='{color}'><title>{_range(low, high)}: {count}</title></rect>")
        if count:
            out.append(f"<text x='{x + slot / 2:.1f}' y='{top + plot_h - bar_h - 3:.1f}' font-size='9' "
                       f"fill='{AXIS}' text-anchor='middle'>{count}</text>")
        out.append(f"<text x='{x + slot / 2:.1f}' y='{height - bottom + 14}' font-size='10' fill='{AXIS}' "
                   f"text-anchor='middle'>{_range(low, high)}</text>")
    for label, ms in markers:
        index = next((i for i, (low, high, _) in enumerate(bins) if high is None or ms < high), len(bins) - 1)
        low, high, _ = bins[index]
        share = 0.5 if high is None else (ms - low) / max(high - low, 1)
        x = left + (index + share) * slot
        out.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{top}' y2='{top + plot_h}' stroke='#111827' "
                   f"stroke-dasharray='3 3'/><text x='{x + 4:.1f}' y='{top + 10}' font-size='10' "
                   f"fill='#111827'>{escape(label)}</text>")
    out.append(f"<text x='{width - right}' y='{height - 4}' font-size='10' fill='{MUTED}' text-anchor='end'>"
               "milliseconds · imports per bin</text></svg>")
    return "<figure class='chart'>" + "".join(out) + "</figure>"


def _range(low, high):
    return f"≥{_tick_label(low)}" if high is None else f"{_tick_label(low)}–{_tick_label(high)}"


def stacked_bars(title, rows, width=1120, empty="no data"):
    """Return SVG stacked horizontal bars, one per ``(label, {status: count})`` row, with a legend."""
    rows = [(label, counts) for label, counts in rows if sum(counts.values())]
    if not rows:
        return f"<figure class='chart'><figcaption>{escape(title)}</figcaption><p class='empty'>{escape(empty)}</p></figure>"
    left, right, top, bar_h, gap = 110, 12, 48, 26, 30
    height = top + len(rows) * (bar_h + gap) + 10
    plot_w = width - left - right
    out = [f"<svg viewBox='0 0 {width} {height}' width='{width}' height='{height}' role='img' {FONT}>",
           f"<text x='{12}' y='18' font-size='13' font-weight='600'>{escape(title)}</text>"]
    statuses = list(dict.fromkeys([*STATUS_COLORS, *(s for _, counts in rows for s in counts)]))
    legend_x = 12
    for status in statuses:
        if any(counts.get(status) for _, counts in rows):
            out.append(f"<rect x='{legend_x}' y='28' width='10' height='10' rx='2' fill='{_color(status)}'/>"
                       f"<text x='{legend_x + 14}' y='37' font-size='11' fill='#374151'>{escape(status)}</text>")
            legend_x += 24 + 7 * len(status)
    for i, (label, counts) in enumerate(rows):
        y, total, x = top + i * (bar_h + gap), sum(counts.values()), left
        out.append(f"<text x='{left - 8}' y='{y + bar_h / 2 + 4:.1f}' font-size='11' fill='#374151' "
                   f"text-anchor='end'>{escape(label)}</text>")
        for status in statuses:
            count = counts.get(status, 0)
            if not count:
                continue
            w = count / total * plot_w
            out.append(f"<rect x='{x:.1f}' y='{y}' width='{w:.1f}' height='{bar_h}' fill='{_color(status)}'>"
                       f"<title>{escape(status)}: {count}</title></rect>")
            if w > 60:
                out.append(f"<text x='{x + 6:.1f}' y='{y + bar_h / 2 + 4:.1f}' font-size='11' fill='white'>"
                           f"{escape(status)} {count} ({100 * count / total:.1f}%)</text>")
            x += w
        caption = " · ".join(f"{s} {counts[s]}" for s in statuses if counts.get(s))
        out.append(f"<text x='{left}' y='{y + bar_h + 15}' font-size='11' fill='{AXIS}'>"
                   f"{escape(caption)} · {total} in all</text>")
    out.append("</svg>")
    return "<figure class='chart'>" + "".join(out) + "</figure>"


def _color(status):
    return STATUS_COLORS.get(status, "#6366f1")
