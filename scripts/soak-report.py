#!/usr/bin/env python3
"""Turn the soak's samples (host/tests/soak.rs, a CSV) into a table and a plot.

Usage: scripts/soak-report.py SAMPLES.csv [--md docs/soak.md] [--svg docs/soak.svg]
                              [--title TEXT] [--warmup-min 5] [--retention-min 10]

Writes a Markdown page (run, slopes after warm-up, a table every few minutes) and an SVG with
four panels (RSS, open fds, outbox and ledger rows, delivery lag) drawn by hand: no plotting
library, nothing downloaded. The slopes are least-squares fits over the samples after the
warm-up, per hour; the tables' slopes are fitted once retention has had time to act (its window
plus two pruning passes), which is when they should level off.
"""

import argparse
import csv
import datetime
import html
import sys


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit(f"{path}: no samples")
    return [{k: float(v) for k, v in r.items()} for r in rows]


def slope_per_hour(xs, ys):
    """Least-squares slope of ys over xs (seconds), per hour; None for fewer than 3 points."""
    n = len(xs)
    if n < 3:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx * 3600


def fmt_slope(s, unit):
    return "n/a" if s is None else f"{s:+.1f} {unit}/h"


def panel(x0, y0, w, h, title, series, t_max, unit):
    """One panel: axes, grid, min/max labels, one polyline per (name, colour, ts, ys)."""
    ys_all = [y for _, _, _, ys in series for y in ys]
    lo, hi = min(ys_all + [0]), max(ys_all + [1])
    if hi == lo:
        hi = lo + 1
    hi = hi * 1.08
    out = [f'<g font-family="sans-serif" font-size="11">']
    out.append(f'<text x="{x0}" y="{y0 - 6}" font-size="13" font-weight="bold">{html.escape(title)}</text>')
    out.append(f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#888"/>')
    for i in range(1, 4):
        gy = y0 + h * i / 4
        val = hi - (hi - lo) * i / 4
        out.append(f'<line x1="{x0}" y1="{gy:.1f}" x2="{x0 + w}" y2="{gy:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{x0 - 4}" y="{gy + 4:.1f}" text-anchor="end">{val:,.0f}</text>')
    out.append(f'<text x="{x0 - 4}" y="{y0 + 10}" text-anchor="end">{hi:,.0f}</text>')
    out.append(f'<text x="{x0 - 4}" y="{y0 + h}" text-anchor="end">{lo:,.0f}</text>')
    out.append(f'<text x="{x0 + w}" y="{y0 + h + 14}" text-anchor="end">{t_max / 60:.0f} min</text>')
    out.append(f'<text x="{x0}" y="{y0 + h + 14}">0</text>')
    out.append(f'<text x="{x0 + w / 2}" y="{y0 + h + 14}" text-anchor="middle">{html.escape(unit)}</text>')
    for k, (name, colour, ts, ys) in enumerate(series):
        pts = " ".join(
            f"{x0 + w * t / t_max:.1f},{y0 + h - h * (y - lo) / (hi - lo):.1f}" for t, y in zip(ts, ys)
        )
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        out.append(f'<text x="{x0 + w - 4}" y="{y0 + 14 + 13 * k}" text-anchor="end" fill="{colour}">{html.escape(name)}</text>')
    out.append("</g>")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("samples")
    ap.add_argument("--md", default="docs/soak.md")
    ap.add_argument("--svg", default="docs/soak.svg")
    ap.add_argument("--title", default="taskhost soak through daprd + Kafka + PostgreSQL")
    ap.add_argument("--note", default="", help="a line about the run (command, rate, machine)")
    ap.add_argument("--warmup-min", type=float, default=5.0)
    ap.add_argument("--retention-min", type=float, default=None,
                    help="the host's retention in the run (minutes): the tables' slopes are fitted after it")
    a = ap.parse_args()

    rows = read(a.samples)
    t = [r["t_s"] for r in rows]
    t_max = max(t[-1], 1)
    warm = a.warmup_min * 60
    if warm >= t_max * 0.5:
        warm = t_max * 0.2  # a short run: leave most of it for the fit
    after = [r for r in rows if r["t_s"] >= warm]
    ta = [r["t_s"] for r in after]
    rss_mib = lambda r: r["rss_kib"] / 1024  # noqa: E731
    s_rss = slope_per_hour(ta, [rss_mib(r) for r in after])
    s_fds = slope_per_hour(ta, [r["fds"] for r in after])
    s_lag = slope_per_hour(ta, [r["lag_p99_ms"] for r in after])
    s_pending = slope_per_hour(ta, [r["outbox_pending"] for r in after])
    rate = (rows[-1]["writes"] - rows[0]["writes"]) / max(t[-1] - t[0], 1)
    tables_line = "- Tables: no retention window given (`--retention-min`), so no level-off fitted."
    if a.retention_min is not None:
        settle = (a.retention_min + 2) * 60
        level = [r for r in rows if r["t_s"] >= settle]
        if len(level) >= 3:
            tl = [r["t_s"] for r in level]
            s_out = slope_per_hour(tl, [r["outbox_rows"] for r in level])
            s_led = slope_per_hour(tl, [r["ledger_rows"] for r in level])
            peak_before = lambda k: max(r[k] for r in rows if r["t_s"] < settle)  # noqa: E731
            tables_line = (
                f"- Tables, with retention at {a.retention_min:g} min (fitted from {settle / 60:.0f} min: "
                f"the window plus two pruning passes): outbox rows {fmt_slope(s_out, 'rows')} "
                f"({min(r['outbox_rows'] for r in level):,.0f}–{max(r['outbox_rows'] for r in level):,.0f}; "
                f"{peak_before('outbox_rows'):,.0f} at most before); ledger rows {fmt_slope(s_led, 'rows')} "
                f"({min(r['ledger_rows'] for r in level):,.0f}–{max(r['ledger_rows'] for r in level):,.0f}; "
                f"{peak_before('ledger_rows'):,.0f} at most before)."
            )
        else:
            tables_line = f"- Tables: the run ended before retention ({a.retention_min:g} min) could level them off."

    svg_w, pw, ph = 900, 360, 200
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{svg_w}" height="560" viewBox="0 0 {svg_w} 560">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="20" y="24" font-family="sans-serif" font-size="15" font-weight="bold">{html.escape(a.title)}</text>',
        f'<text x="20" y="42" font-family="sans-serif" font-size="11">{html.escape(a.note)} · {t_max / 60:.1f} min, {rate:.0f} writes/s · slopes after {warm / 60:.1f} min warm-up</text>',
        panel(80, 70, pw, ph, f"taskhost RSS (MiB) · slope {fmt_slope(s_rss, 'MiB')}",
              [("RSS", "#1f77b4", t, [rss_mib(r) for r in rows])], t_max, "MiB"),
        panel(80 + pw + 90, 70, pw, ph, f"open file descriptors · slope {fmt_slope(s_fds, 'fds')}",
              [("fds", "#2ca02c", t, [r["fds"] for r in rows])], t_max, "fds"),
        panel(80, 70 + ph + 70, pw, ph, "rows (all users)",
              [("outbox", "#ff7f0e", t, [r["outbox_rows"] for r in rows]),
               ("ledger (processed_messages)", "#9467bd", t, [r["ledger_rows"] for r in rows]),
               ("outbox pending", "#d62728", t, [r["outbox_pending"] for r in rows])], t_max, "rows"),
        panel(80 + pw + 90, 70 + ph + 70, pw, ph, "write → audit entry lag (ms)",
              [("p50", "#17becf", t, [r["lag_p50_ms"] for r in rows]),
               ("p99", "#d62728", t, [r["lag_p99_ms"] for r in rows]),
               ("oldest pending outbox row", "#7f7f7f", t, [r["oldest_pending_ms"] for r in rows])], t_max, "ms"),
        "</svg>",
    ]
    with open(a.svg, "w") as f:
        f.write("\n".join(parts) + "\n")

    step = max(1, len(rows) // 15)
    table = [rows[i] for i in range(0, len(rows), step)]
    if table[-1] is not rows[-1]:
        table.append(rows[-1])
    lines = [
        f"# {a.title}",
        "",
        f"Written by `scripts/soak-report.py` from the samples of `host/tests/soak.rs` on "
        f"{datetime.date.today().isoformat()}. {a.note}",
        "",
        f"![RSS, file descriptors, rows and lag over the run]({a.svg.split('/')[-1]})",
        "",
        f"- Duration {t_max / 60:.1f} min, {len(rows)} samples, {rate:.1f} acknowledged writes/s on average.",
        f"- After a warm-up of {warm / 60:.1f} min (least-squares slopes): RSS {fmt_slope(s_rss, 'MiB')} "
        f"({min(rss_mib(r) for r in after):.0f}–{max(rss_mib(r) for r in after):.0f} MiB); "
        f"open fds {fmt_slope(s_fds, 'fds')} ({min(r['fds'] for r in after):.0f}–{max(r['fds'] for r in after):.0f}); "
        f"outbox pending {fmt_slope(s_pending, 'rows')} (at most {max(r['outbox_pending'] for r in after):.0f}); "
        f"p99 lag {fmt_slope(s_lag, 'ms')}.",
        f"- Lag (write → audit entry) after the warm-up: p50 at most {max(r['lag_p50_ms'] for r in after):.0f} ms, "
        f"p99 at most {max(r['lag_p99_ms'] for r in after):.0f} ms, max {max(r['lag_max_ms'] for r in after):.0f} ms; "
        f"oldest pending outbox row at most {max(r['oldest_pending_ms'] for r in after):.0f} ms old.",
        tables_line,
        "",
        "| t (min) | writes/s | RSS (MiB) | fds | outbox rows | pending | oldest pending (ms) | ledger rows | lag p50 (ms) | lag p99 (ms) | lag max (ms) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in table:
        lines.append(
            f"| {r['t_s'] / 60:.1f} | {r['writes_per_s']:.0f} | {rss_mib(r):.0f} | {r['fds']:.0f} | "
            f"{r['outbox_rows']:,.0f} | {r['outbox_pending']:.0f} | {r['oldest_pending_ms']:.0f} | "
            f"{r['ledger_rows']:,.0f} | {r['lag_p50_ms']:.0f} | {r['lag_p99_ms']:.0f} | {r['lag_max_ms']:.0f} |"
        )
    with open(a.md, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {a.md} and {a.svg}")


if __name__ == "__main__":
    main()
