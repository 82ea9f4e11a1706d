"""Page skeleton and stylesheet of the HTML report (self-contained: no external resources)."""

from __future__ import annotations

from string import Template

__all__ = ["CSS", "PAGE"]

CSS = """
:root {
  --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; --panel: #f5f7fa;
  --accent: #1f5fa8; --warn: #b3261e; --warn-bg: #fdecea; --ok: #1e7b45;
}
* { box-sizing: border-box; }
html { font-size: 14px; }
body {
  margin: 0 auto; max-width: 1280px; padding: 24px 28px 48px; color: var(--ink);
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  line-height: 1.45; background: #fff;
}
header.page { border-bottom: 3px solid var(--accent); padding-bottom: 12px; margin-bottom: 20px; }
header.page h1 { margin: 0 0 4px; font-size: 1.75rem; }
header.page p { margin: 2px 0; color: var(--muted); }
h2 { font-size: 1.3rem; margin: 32px 0 10px; padding-bottom: 4px;
     border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 18px 0 8px; }
p.note, .na { color: var(--muted); }
.na { font-style: italic; }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; }
.kpi { background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
       padding: 12px 14px; }
.kpi .label { font-size: 0.8rem; text-transform: uppercase; letter-spacing: 0.04em;
              color: var(--muted); }
.kpi .value { font-size: 1.5rem; font-weight: 650; font-variant-numeric: tabular-nums; }
.kpi .sub { font-size: 0.8rem; color: var(--muted); }
.grid2 { display: grid; grid-template-columns: minmax(0, 1.2fr) minmax(0, 1fr); gap: 20px;
         align-items: start; }
.scroll { overflow-x: auto; }
.narrow { overflow-x: auto; }
.narrow table { width: auto; min-width: 55%; }
@media (max-width: 900px) { .grid2 { grid-template-columns: 1fr; } }
figure { margin: 0; }
figure img { max-width: 100%; height: auto; display: block; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
th { background: var(--panel); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
tbody tr:nth-child(even) { background: #fbfcfd; }
tfoot td { font-weight: 600; border-top: 2px solid var(--line); }
td.id { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
        font-size: 0.82rem; word-break: break-all; max-width: 16ch; }
td.reasons ol { margin: 0; padding-left: 1.2em; }
td.reasons li { margin: 0; }
.yes { color: var(--ok); font-weight: 600; }
p.warn { background: var(--warn-bg); color: var(--warn); padding: 4px 8px; }
tr.drifted td { background: var(--warn-bg); color: var(--warn); font-weight: 600; }
.badge { display: inline-block; padding: 0 6px; border-radius: 4px; font-size: 0.78rem;
         background: var(--warn); color: #fff; }
.status-ok { color: var(--ok); font-weight: 600; }
.status-warn { color: var(--warn); font-weight: 600; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; font-variant-numeric: tabular-nums; word-break: break-all; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.85rem; }
footer { margin-top: 36px; color: var(--muted); font-size: 0.8rem;
         border-top: 1px solid var(--line); padding-top: 8px; }
@page { size: A4 landscape; margin: 12mm; }
@media print {
  html { font-size: 11px; }
  body { max-width: none; padding: 0; }
  h2 { break-after: avoid; }
  section.model-card { break-before: page; }
  .kpi, figure, tr, dl.facts { break-inside: avoid; }
  thead { display: table-header-group; }
  tbody tr:nth-child(even) { background: none; }
}
"""

PAGE = Template(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="retain">
<title>$title</title>
<style>$css</style>
</head>
<body>
$body
</body>
</html>
"""
)
