"""Render a verdict and its results as one self-contained HTML page.

Inline CSS and inline SVG only (see :mod:`racelab.reports.charts`): the page fetches
nothing when opened, so it can be archived as a CI artifact and read offline.
Nothing is written here.
"""
import datetime
from html import escape

from racelab.reports import charts
from racelab.reports.gates import FAIL, PASS, format_value
from racelab.reports.results import ANOMALY, DISPLAY, METRIC
from racelab.reports.summary import (DATABASE_MEANING, EXPLORE_MEANING, SERVER_TIME_MEANING, database_rows,
                                     explore_cells, fault_rows, first_examples, headline, load_line)

# Drawn with CSS, not emoji: a CI runner's browser may have no emoji font.
ICONS = {PASS: "<span class='icon pass'>✓</span>", FAIL: "<span class='icon fail'>✗</span>",
         "skipped": "<span class='icon skipped'>–</span>"}
BIN_EDGES_MS = (0, 10, 20, 30, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000)
PERCENTILE_LINES = (("p50", "#2563eb", "50%"), ("p95", "#f59e0b", "95%"), ("p99", "#dc2626", "99%"))
CSS = """
body{margin:0;background:#f8fafc;color:#111827;font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif}
main{max-width:1160px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px}
.meta{color:#6b7280;font-size:12px}
.banner{margin:14px 0;padding:12px 16px;border-radius:8px;font-size:16px;font-weight:600}
.banner.pass{background:#dcfce7;color:#14532d}.banner.fail{background:#fee2e2;color:#7f1d1d}
.banner ul{margin:6px 0 0;padding-left:20px;font-weight:400;font-size:13px}
.cards{display:grid;grid-template-columns:repeat(3,1fr);gap:12px}
.card{background:#fff;border:1px solid #e5e7eb;border-left:6px solid #9ca3af;border-radius:8px;padding:10px 14px}
.card.pass{border-left-color:#16a34a}.card.fail{border-left-color:#dc2626;background:#fff7f7}
.card code{font-size:13px}.card .value{font-size:24px;font-weight:700;margin:4px 0}
.card .sub{color:#6b7280;font-size:12px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #e5e7eb;border-radius:8px}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #f1f5f9;vertical-align:top;font-size:13px}
th{background:#f1f5f9;font-weight:600}th.num{text-align:right}tr.fail td{background:#fff1f2}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:12px}
figure.chart{margin:0;background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:8px;overflow:hidden}
figure.chart svg{max-width:100%;height:auto;display:block}
figcaption{font-weight:600;font-size:13px}.empty{color:#9ca3af;margin:8px 0}
ul.notices li{margin:2px 0}td code{white-space:nowrap}
.icon{display:inline-block;width:18px;height:18px;border-radius:50%;color:#fff;text-align:center;
line-height:18px;font-size:12px;font-weight:700;vertical-align:-3px}
.icon.pass{background:#16a34a}.icon.fail{background:#dc2626}.icon.skipped{background:#9ca3af}.files{color:#6b7280;font-size:12px}
"""


def render_html(results, verdict, title="racelab report"):
    """Return the report page for ``results`` judged by ``verdict``."""
    generated = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>",
             f"<meta name='viewport' content='width=device-width'><style>{CSS}</style></head><body><main>",
             f"<h1>{escape(title)}</h1><div class='meta'>generated {generated} · "
             f"{results.metrics.get('runs', 0)} load run(s) · {len(verdict.races)} race rows</div>",
             f"<p class='meta'>{escape(load_line(results, verdict))}</p>" if results.metrics.get("load") else "",
             _banner(verdict), "<h2>Gates</h2>", _gate_cards(verdict), "<h2>Races</h2>", _races(verdict),
             *(["<h2>Exploration</h2>", _explore(results)] if results.explore else []),
             "<h2>Latency percentiles over time</h2>", _latency_panels(results, _display_limit(verdict)),
             *(["<h2>Faults</h2>", _faults(results)] if results.faults else []),
             "<h2>Time to display</h2>", _display(results, _display_limit(verdict)),
             "<h2>File-upload status distribution</h2>", _statuses(results),
             *(["<h2>Database</h2>", _database(results, verdict)] if database_rows(results.metrics) else []),
             *(["<h2>Server time</h2>", _server_time(results)] if results.metrics.get("server_time") else []),
             "<h2>Anomalies and failures</h2>", _failures(results)]
    if results.notices:
        parts.append("<h2>Notices</h2><ul class='notices'>" +
                     "".join(f"<li>{escape(n)}</li>" for n in results.notices) + "</ul>")
    parts.append(f"<p class='files'>read: {escape(', '.join(results.files))}</p></main></body></html>")
    return "\n".join(parts)


CONNECTION_COLORS = ("#2563eb", "#16a34a", "#f59e0b", "#9333ea", "#64748b")


def _database(results, verdict):
    details = results.metrics["database"]
    rows = "".join(f"<tr><td>{escape(figure)}</td><td>{escape(measured)}</td><td>{escape(target)}</td></tr>"
                   for figure, measured, target in database_rows(results.metrics))
    commit_gate = verdict.gate("commit_p95_ms")
    commits = details.get("commit_timeline") or []
    commit_chart = charts.line_chart(
        "commit duration over time", [(label, color, [(p["t"], p[label]) for p in commits])
                                      for label, color in (("p50", "#2563eb"), ("p95", "#f59e0b"), ("max", "#dc2626"))],
        limit=commit_gate.limit if commit_gate else None, empty="no commit timed (see the table)")
    connections = details.get("connections") or {}
    timeline = connections.get("timeline") or []
    names = ["total", *connections.get("peak_by_application", {})]
    connections_gate = verdict.gate("connections_peak_pct")
    limit = (connections_gate.limit / 100 * connections["max_connections"]
             if connections_gate and connections else None)
    connection_chart = charts.line_chart(
        "connections over time",
        [(name.removeprefix("racelab "), CONNECTION_COLORS[i % len(CONNECTION_COLORS)], [(p["t"], p.get(name, 0)) for p in timeline])
         for i, name in enumerate(names)], y_unit="", limit=limit, empty="no connection sampled (see the table)")
    return (f"<p class='meta'>{escape(DATABASE_MEANING)}</p><table><tr><th>figure</th><th>measured</th>"
            f"<th>seed plan's target</th></tr>{rows}</table><p></p>"
            f"<div class='grid2'>{commit_chart}{connection_chart}</div>")


def _server_time(results):
    rows = "".join(f"<tr><td><code>{escape(name)}</code></td><td class='num'>{f['count']}</td>"
                   f"<td class='num'>{f['p50']:.0f} ms</td><td class='num'>{f['p95']:.0f} ms</td></tr>"
                   for name, f in results.metrics["server_time"].items())
    return (f"<p class='meta'>{escape(SERVER_TIME_MEANING)}</p><table><tr><th>endpoint</th>"
            f"<th class='num'>requests</th><th class='num'>p50</th><th class='num'>p95</th></tr>{rows}</table>")


def _banner(verdict):
    css = "pass" if verdict.passed else "fail"
    items = "".join(f"<li>{escape(line)}</li>" for line in verdict.breaches())
    text = escape(headline(verdict)[2:])  # the headline's emoji becomes the CSS icon
    return (f"<div class='banner {css}'>{ICONS[PASS if verdict.passed else FAIL]} {text}"
            + (f"<ul>{items}</ul>" if items else "") + "</div>")


def _gate_cards(verdict):
    cards = []
    for r in verdict.gates:
        measured = format_value(r.measured, r.gate.unit) if r.measured is not None else "no data"
        cards.append(
            f"<div class='card {r.status}'><div>{ICONS[r.status]} <code>{escape(r.expression)}</code></div>"
            f"<div class='value'>{escape(measured)}</div>"
            f"<div class='sub'>limit {escape(format_value(r.limit, r.gate.unit))}"
            f"{' · ' + escape(r.source) if r.source else ''}</div>"
            f"<div class='sub'>{escape(r.gate.meaning)}</div></div>")
    return "<div class='cards'>" + "".join(cards) + "</div>"


def _races(verdict):
    if not verdict.races:
        return "<p class='empty'>No races.json in the results: run <code>racelab races</code> to add the race table.</p>"
    rows = "".join(
        f"<tr class='{'fail' if r.status == FAIL else ''}'><td>{ICONS[r.status]}</td><td>{escape(r.race)}</td>"
        f"<td>{escape(r.mode)}</td><td class='num'>{r.runs}</td><td class='num'>{r.anomalies}</td>"
        f"<td class='num'>{escape(format_value(r.reproduced_pct, '%'))}</td><td><code>{escape(r.rule)}</code></td>"
        f"<td>{escape((r.example or r.skip_reason)[:240])}</td></tr>" for r in verdict.races)
    return ("<table><tr><th></th><th>race</th><th>mode</th><th class='num'>runs</th><th class='num'>anomalies</th>"
            f"<th class='num'>reproduced</th><th>required</th><th>example</th></tr>{rows}</table>")


def _explore(results):
    head = "".join(f"<th>{escape(name)}</th>" for name in (
        "race", "db", "workers", "strategy", "mode", "seeds", "found", "runs to find: median", "max", "runs/s"))
    rows = "".join("<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in explore_cells(row)) + "</tr>"
                   for row in results.explore)
    return f"<p class='meta'>{escape(EXPLORE_MEANING)}</p><table><tr>{head}</tr>{rows}</table>"


def _display_limit(verdict):
    display = verdict.gate("time_to_display_p95_ms")
    return display.limit if display else None


def _latency_panels(results, display_limit):
    display_keys = sorted(k for k in results.history if k[0] == METRIC and k[1].startswith(DISPLAY))
    http = [r for r in results.stats if r.get("Type") not in (ANOMALY, METRIC, "") and r.get("Name") != "Aggregated"
            and r.get("Name") not in ("/api/projects", "/api/health/import-flow")]  # once per user: flat lines
    http.sort(key=lambda r: ("/import " not in r["Name"], -float(r.get("Request Count") or 0)))
    http_keys = [(r["Type"], r["Name"]) for r in http if (r["Type"], r["Name"]) in results.history][:4]
    keys = (display_keys + http_keys)[:6]
    if not keys:
        return "<p class='empty'>No Locust history: run locust with <code>--csv PREFIX --csv-full-history</code>.</p>"
    panels, bands = [], [(fault["kind"], fault["start"], fault["end"]) for fault in results.faults]
    for kind, name in keys:
        points = results.history[(kind, name)]
        series = [(label, color, [(p["t"], p[column]) for p in points]) for label, color, column in PERCENTILE_LINES]
        title = name if kind == METRIC else f"{kind} {name}"
        panels.append(charts.line_chart(title, series, limit=display_limit if name == DISPLAY else None,
                                        bands=bands))
    return "<div class='grid2'>" + "".join(panels) + "</div>"


def _faults(results):
    rows = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in cells) + "</tr>" for cells in fault_rows(results))
    return ("<p class='meta'>Each fault of the nemesis, shaded on the latency charts above; times in seconds since "
            "the load started. A kill's span is the time it was given to recover; recovered: from its end until health "
            "answered 200 and every import it caught was final.</p><table><tr><th>kind</th>"
            f"<th>pids</th><th>from</th><th>to</th><th>seconds</th><th>recovered</th></tr>{rows}</table>")


def _display(results, limit):
    figures = results.metrics.get("time_to_display") or {}
    buckets = results.histograms.get(DISPLAY)
    main = figures.get(DISPLAY)
    if buckets:
        markers = [("p50", main["p50"]), ("p95", main["p95"])] if main else []
        chart = charts.histogram(f"{DISPLAY}: upload start → tasks visible with the right count (small files)",
                                 bins(buckets), limit=limit, markers=markers)
    else:
        chart = ("<p class='empty'>No time-to-display histogram (the load suite writes it to "
                 "<code>PREFIX_racelab.json</code>); percentiles below come from Locust's stats.</p>")
    if not figures:
        return chart
    rows = "".join(
        f"<tr><td><code>{escape(name)}</code></td><td class='num'>{f['count']}</td>"
        + "".join(f"<td class='num'>{f[k]:.0f} ms</td>" for k in ("p50", "p95", "p99", "max")) + "</tr>"
        for name, f in figures.items())
    heads = "".join(f"<th class='num'>{h}</th>" for h in ("imports", "p50", "p95", "p99", "max"))
    return chart + f"<p></p><table><tr><th>metric</th>{heads}</tr>{rows}</table>"


def bins(buckets):
    """Return ``[(low, high, count)]`` over ``BIN_EDGES_MS`` for ``{ms: count}``, trimmed after the last sample."""
    edges = list(BIN_EDGES_MS)
    out = [[low, high, 0] for low, high in zip(edges, edges[1:] + [None])]
    for ms, count in buckets.items():
        for row in out:
            if row[1] is None or ms < row[1]:
                row[2] += count
                break
    last = max(i for i, row in enumerate(out) if row[2])
    return [tuple(row) for row in out[: max(last + 1, 8)]]


def _statuses(results):
    if not results.statuses:
        return "<p class='empty'>No file-upload statuses: neither the load suite nor the health endpoint reported any.</p>"
    labels = {"load users": "seen by users", "server": "server (all)"}
    rows = [(labels.get(source, source), counts) for source, counts in results.statuses.items()]
    return charts.stacked_bars("Final status of each imported file upload, as the users saw it and as the "
                               "server counts all of them", rows)


def _failures(results):
    by_name = results.metrics.get("anomalies_by_name") or {}
    examples = first_examples(results.failures)
    parts = []
    if by_name:
        rows = "".join(f"<tr class='fail'><td><code>{escape(n)}</code></td><td class='num'>{c}</td>"
                       f"<td>{escape(examples.get(n, '')[:300])}</td></tr>" for n, c in by_name.items())
        parts.append(f"<table><tr><th>anomaly</th><th class='num'>count</th><th>example</th></tr>{rows}</table><p></p>")
    http = [f for f in results.failures if f.get("Method") != ANOMALY][:10]
    if http:
        rows = "".join(f"<tr><td>{escape(f.get('Method', ''))} {escape(f.get('Name', ''))}</td>"
                       f"<td class='num'>{escape(str(f.get('Occurrences', '')))}</td>"
                       f"<td>{escape(str(f.get('Error', ''))[:300])}</td></tr>" for f in http)
        parts.append(f"<table><tr><th>HTTP request</th><th class='num'>count</th><th>error</th></tr>{rows}</table>")
    return "".join(parts) or f"<p>{ICONS[PASS]} No anomaly and no failed request.</p>"
