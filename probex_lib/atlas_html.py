"""The model atlas page: one self-contained HTML file drawing a folder's model trees.

``probex-describe FOLDER`` computes an atlas (the dict stored as ``atlas.json``, format 1: models,
edges, trees; see :func:`check`) and this module only draws it:

* :func:`layout` places every model (a layered tidy tree per tree, trees side by side), in Python:
  the browser runs no physics and the same atlas always gives the same picture;
* :func:`figure` is the plotly figure (a plain dict): nodes coloured by tree, roots larger and
  outlined, edges coloured by type with an arrowhead near the child, extra merge parents dashed,
  "type · confidence" on each edge's midpoint;
* :func:`render` / :func:`write_atlas_html` make the page: plotly's own JS inlined (no network,
  no CDN), a summary header, and a side panel that shows the model clicked on;
* :func:`example_atlas` makes up an atlas of any size (tests, benchmarks, a look at the page).

The page records what it drew in ``<body>``'s data attributes once ``Plotly.newPlot`` resolved
(``data-rendered-ms``: ms since navigation; ``data-plot-ms``: of that, in ``Plotly.newPlot``;
``data-n-nodes``, ``data-n-arrows``: points drawn; ``data-renderer``: svg or webgl), so a headless
browser's ``--dump-dom`` shows when and what rendered.
"""
from __future__ import annotations

import html
import json
import math
import os
import random
from collections import Counter
from pathlib import Path
from typing import Any

from . import atomic

FORMAT_VERSION = 1
EDGE_TYPES = ("fine-tune", "lora", "pruned", "quantised", "fp16", "merge")
TREE_PALETTE = ("#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD", "#8C564B", "#E377C2", "#BCBD22",
                "#17BECF")  # d3's category10 without its grey; tree k gets colour k mod 9 ...
TREE_SYMBOLS = ("circle", "square", "diamond", "triangle-up")  # ... and symbol (k div 9) mod 4: 36 distinct looks
EDGE_COLOURS = {"fine-tune": "#4D4D4D", "lora": "#B8860B", "pruned": "#8B0000", "quantised": "#00008B",
                "fp16": "#006400", "merge": "#8B008B"}  # darker than any tree colour
TREE_GAP = 2.0  # empty leaf slots between two trees
ARROW_AT = 0.78  # arrowheads sit this far along each edge, from parent (0) to child (1)
GL_ABOVE = 2000  # more models than this: WebGL traces (Scattergl), SVG otherwise
EDGE_TEXT_MAX = 150  # at most this many edges: "type · confidence" written on the plot, else on hover only
NODE_TEXT_MAX = 60  # at most this many models: their names written on the plot (roots' always, up to ROOT_TEXT_MAX)
ROOT_TEXT_MAX = 40  # at most this many roots: their ids written above them
LEGEND_TREES = 15  # trees listed one by one in the legend; the rest as one "... more trees" entry
PLOT_ASPECT = 1.7  # width / height of the plot area the y scale is fitted to (the ratio is then locked)
MODEL_KEYS = ("id", "tree", "is_root", "parents", "children", "files", "metadata", "declared_base_model",
              "kurtosis", "expert")
EDGE_KEYS = ("parent", "child", "type", "confidence", "distance", "extra_parent")


# --------------------------------------------------------------------------- checks and layout

def check(atlas: dict) -> None:
    """Raise ValueError naming what is wrong if ``atlas`` is not a format-1 atlas: a missing key,
    a duplicate model id, an edge type outside EDGE_TYPES, a parent or edge end that is no model."""
    if not isinstance(atlas, dict):
        raise ValueError(f"an atlas is a dict, not {type(atlas).__name__}")
    missing = [k for k in ("format_version", "models", "edges", "trees") if k not in atlas]
    if missing:
        raise ValueError(f"atlas: missing key(s) {missing}")
    if atlas["format_version"] != FORMAT_VERSION:
        raise ValueError(f"atlas format_version {atlas['format_version']!r}: this page reads version {FORMAT_VERSION}")
    ids: set[str] = set()
    for i, m in enumerate(atlas["models"]):
        lack = [k for k in MODEL_KEYS if k not in m]
        if lack:
            raise ValueError(f"atlas model {m.get('id', f'#{i}')!r}: missing key(s) {lack}")
        if m["id"] in ids:
            raise ValueError(f"atlas: model id {m['id']!r} appears twice")
        ids.add(m["id"])
    for m in atlas["models"]:
        unknown = [p for p in m["parents"] if p not in ids]
        if unknown:
            raise ValueError(f"atlas model {m['id']!r}: parent(s) {unknown} are not models of the atlas")
    for e in atlas["edges"]:
        lack = [k for k in EDGE_KEYS if k not in e]
        if lack:
            raise ValueError(f"atlas edge {e.get('parent')!r} -> {e.get('child')!r}: missing key(s) {lack}")
        if e["type"] not in EDGE_TYPES:
            raise ValueError(f"atlas edge {e['parent']!r} -> {e['child']!r}: type {e['type']!r} is not one of {EDGE_TYPES}")
        for end in ("parent", "child"):
            if e[end] not in ids:
                raise ValueError(f"atlas edge {e['parent']!r} -> {e['child']!r}: its {end} is not a model of the atlas")


def layout(atlas: dict) -> dict[str, tuple[float, float]]:
    """Model id -> (x, y). Each tree is a layered tidy tree along primary parents (``parents[0]``):
    y = -depth, leaves take x = 0, 1, 2, ... in depth-first order (children in the models' order)
    and a parent sits midway between its first and last child. Trees (ordered by tree id) stand
    side by side, TREE_GAP slots apart. Extra (merge) parents do not move anything. O(n)."""
    models = atlas["models"]
    index = {m["id"]: i for i, m in enumerate(models)}
    kids: list[list[int]] = [[] for _ in models]
    roots = []
    for i, m in enumerate(models):
        if m["parents"]:
            if m["parents"][0] not in index:
                raise ValueError(f"atlas model {m['id']!r}: parent {m['parents'][0]!r} is not a model of the atlas")
            kids[index[m["parents"][0]]].append(i)
        else:
            roots.append(i)
    roots.sort(key=lambda i: (_tree_key(models[i]["tree"]), i))
    x, depth = [0.0] * len(models), [0] * len(models)
    cursor, placed = 0.0, 0
    for k, r in enumerate(roots):
        if k:
            cursor += TREE_GAP
        stack = [(r, 0)]
        while stack:  # iterative post-order: a 10,000-deep chain must not hit the recursion limit
            v, next_kid = stack[-1]
            if next_kid < len(kids[v]):
                stack[-1] = (v, next_kid + 1)
                child = kids[v][next_kid]
                depth[child] = depth[v] + 1
                stack.append((child, 0))
                continue
            stack.pop()
            placed += 1
            if kids[v]:
                x[v] = (x[kids[v][0]] + x[kids[v][-1]]) / 2
            else:
                x[v], cursor = cursor, cursor + 1
    if placed < len(models):  # a model not below any root: its primary parents loop
        seen = {i for i in range(len(models)) if _reached(i, models, index, roots)}
        loop = [models[i]["id"] for i in range(len(models)) if i not in seen][:5]
        raise ValueError(f"atlas: models {loop} are below no root: their primary parents form a cycle")
    return {m["id"]: (x[i], float(-depth[i])) for i, m in enumerate(models)}


def _tree_key(tree: Any) -> tuple[int, Any]:
    """Sort key for tree ids: numbers first in numeric order, anything else after, as text."""
    return (0, tree) if isinstance(tree, (int, float)) else (1, str(tree))


def _reached(i: int, models: list[dict], index: dict[str, int], roots: list[int]) -> bool:
    """Whether walking up primary parents from model i ends at a root (used only to name a cycle)."""
    seen: set[int] = set()
    while models[i]["parents"] and i not in seen:
        seen.add(i)
        i = index[models[i]["parents"][0]]
    return not models[i]["parents"]


# --------------------------------------------------------------------------- the figure

def tree_styles(atlas: dict) -> dict[Any, tuple[str, str]]:
    """Tree id -> (colour, marker symbol): the k-th tree in tree id order gets TREE_PALETTE[k mod 9]
    and TREE_SYMBOLS[(k div 9) mod 4], so trees 0 and 9 share a colour but not a shape."""
    trees = sorted({m["tree"] for m in atlas["models"]} | {t["id"] for t in atlas["trees"]}, key=_tree_key)
    n = len(TREE_PALETTE)
    return {t: (TREE_PALETTE[k % n], TREE_SYMBOLS[(k // n) % len(TREE_SYMBOLS)]) for k, t in enumerate(trees)}


def marker_sizes(n_models: int) -> tuple[int, int, int]:
    """(model, root, arrowhead) marker sizes in px: smaller as the atlas grows."""
    return (11, 18, 11) if n_models <= 200 else (8, 14, 9) if n_models <= GL_ABOVE else (6, 11, 7)


def edge_label(edge: dict) -> str:
    """E.g. 'fine-tune · 0.93' (an extra merge parent: 'merge (extra parent) · 0.71')."""
    kind = edge["type"] + (" (extra parent)" if edge["extra_parent"] else "")
    return f"{kind} · {_num(edge['confidence'])}"


def _num(v: Any, digits: int = 2) -> str:
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) and math.isfinite(v) else "n/a"


def y_ratio(pos: dict[str, tuple[float, float]]) -> float:
    """Screen length of one depth level over that of one leaf slot, so that the whole atlas fills a
    plot area of aspect PLOT_ASPECT; the page locks it (arrow angles are computed with it)."""
    xs = [p[0] for p in pos.values()] or [0.0]
    ys = [p[1] for p in pos.values()] or [0.0]
    return (max(xs) - min(xs) + 1) / (max(ys) - min(ys) + 1) / PLOT_ASPECT


def arrow_angle(parent: tuple[float, float], child: tuple[float, float], ratio: float) -> float:
    """Degrees clockwise from up (plotly's marker.angle) of the direction parent -> child on a screen
    where one y unit is ``ratio`` x units long."""
    return math.degrees(math.atan2(child[0] - parent[0], (child[1] - parent[1]) * ratio))


def figure(atlas: dict, pos: dict[str, tuple[float, float]] | None = None) -> dict:
    """The plotly figure as a dict {"data", "layout", "config"}; traces with uid "nodes" (one point
    per model, in the models' order), "arrows" and "edge-labels" (one point per edge, in the edges'
    order), one line trace per edge type and legend-only entries for the trees; layout shape 0 is
    the ring (fixed size in px) around the model the panel shows."""
    pos = pos if pos is not None else layout(atlas)
    models, edges = atlas["models"], atlas["edges"]
    gl = len(models) > GL_ABOVE
    kind = "scattergl" if gl else "scatter"
    styles, ratio = tree_styles(atlas), y_ratio(pos)
    data: list[dict] = []
    for t in EDGE_TYPES:  # the lines, one trace per type; extra merge parents apart, dashed
        same = [e for e in edges if e["type"] == t and not e["extra_parent"]]
        if same:
            data.append(_lines(kind, same, pos, f"{t} ({len(same)})", EDGE_COLOURS[t], "solid"))
    extra = [e for e in edges if e["extra_parent"]]
    if extra:
        data.append(_lines(kind, extra, pos, f"extra merge parent ({len(extra)})", EDGE_COLOURS["merge"], "dash"))
    labels = [html.escape(edge_label(e)) for e in edges]
    tips = [_along(pos[e["parent"]], pos[e["child"]], ARROW_AT) for e in edges]
    data.append({"type": kind, "uid": "arrows", "mode": "markers", "showlegend": False, "name": "arrows",
                 "x": [p[0] for p in tips], "y": [p[1] for p in tips], "hovertext": labels,
                 "hovertemplate": "%{hovertext}<extra></extra>",
                 "marker": {"symbol": "arrow", "size": marker_sizes(len(models))[2], "line": {"width": 0},
                            "color": [EDGE_COLOURS[e["type"]] for e in edges],
                            "angle": [round(arrow_angle(pos[e["parent"]], pos[e["child"]], ratio), 2) for e in edges]}})
    mids = [_along(pos[e["parent"]], pos[e["child"]], 0.5) for e in edges]
    written = len(edges) <= EDGE_TEXT_MAX
    data.append({"type": kind, "uid": "edge-labels", "mode": "markers+text" if written else "markers",
                 "showlegend": False, "name": "edges", "x": [p[0] for p in mids], "y": [p[1] for p in mids],
                 "hovertext": labels, "hovertemplate": "%{hovertext}<extra></extra>",
                 "text": labels if written else None, "textposition": "middle right",
                 "textfont": {"size": 9, "color": "#555"}, "marker": {"size": 10, "opacity": 0, "color": "#000"}})
    data.append(_nodes(kind, models, pos, styles))
    data += _tree_legend(atlas, styles)
    hidden = {"visible": False, "showgrid": False, "zeroline": False}
    first = pos[first_root(atlas)] if models else (0.0, 0.0)
    ring = {"type": "circle", "xref": "x", "yref": "y", "xsizemode": "pixel", "ysizemode": "pixel",
            "xanchor": first[0], "yanchor": first[1], "x0": -15, "x1": 15, "y0": -15, "y1": 15,
            "line": {"color": "#000", "width": 2.5}, "layer": "above"}
    fig_layout = {"xaxis": hidden, "shapes": [ring], "yaxis": {**hidden, "scaleanchor": "x", "scaleratio": ratio},
                  "margin": {"l": 10, "r": 10, "t": 10, "b": 10}, "hovermode": "closest", "dragmode": "pan",
                  "clickmode": "event", "plot_bgcolor": "#fff", "paper_bgcolor": "#fff",
                  "legend": {"orientation": "h", "x": 0, "y": 0, "yanchor": "top", "font": {"size": 11},
                             "groupclick": "toggleitem"}}
    config = {"responsive": True, "displaylogo": False, "scrollZoom": True}
    return {"data": data, "layout": fig_layout, "config": config}


def _along(a: tuple[float, float], b: tuple[float, float], t: float) -> tuple[float, float]:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


def _lines(kind: str, edges: list[dict], pos: dict, name: str, colour: str, dash: str) -> dict:
    """One line trace for ``edges`` (segments parent -> child separated by gaps)."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    for e in edges:
        (x0, y0), (x1, y1) = pos[e["parent"]], pos[e["child"]]
        xs += [x0, x1, None]
        ys += [y0, y1, None]
    return {"type": kind, "mode": "lines", "name": name, "x": xs, "y": ys, "hoverinfo": "skip",
            "legendgroup": "edges", "legendgrouptitle": {"text": "edges"},
            "line": {"color": colour, "width": 1.6, "dash": dash}}


def _nodes(kind: str, models: list[dict], pos: dict, styles: dict) -> dict:
    """One point per model: its tree's colour and symbol, roots larger with a dark outline and their
    id above them; hover shows id, tree, parents."""
    hover = []
    for m in models:
        up = "root" if not m["parents"] else "parent" + ("s" if len(m["parents"]) > 1 else "") + ": " + ", ".join(m["parents"])
        hover.append(html.escape(m["id"]) + f"<br>tree {html.escape(str(m['tree']))} · " + html.escape(up))
    small, big, _ = marker_sizes(len(models))
    roots = [_is_root(m) for m in models]
    names, roots_named = len(models) <= NODE_TEXT_MAX, sum(roots) <= ROOT_TEXT_MAX
    text = [html.escape(m["id"]) if root and roots_named else html.escape(m["id"].rsplit("/", 1)[-1]) if names else ""
            for m, root in zip(models, roots)]
    return {"type": kind, "uid": "nodes", "name": "models", "showlegend": False,
            "mode": "markers+text" if names or roots_named else "markers",
            "x": [pos[m["id"]][0] for m in models], "y": [pos[m["id"]][1] for m in models],
            "text": text if names or roots_named else None,
            "textposition": ["top center" if root else "bottom center" for root in roots],
            "textfont": {"size": 10, "color": "#222"},
            "hovertext": hover, "hovertemplate": "%{hovertext}<extra></extra>",
            "marker": {"color": [styles[m["tree"]][0] for m in models],
                       "symbol": [styles[m["tree"]][1] for m in models],
                       "size": [big if _is_root(m) else small for m in models],
                       "line": {"color": "#111", "width": [2.5 if _is_root(m) else 0.6 for m in models]},
                       "opacity": 1}}


def _is_root(m: dict) -> bool:
    return bool(m["is_root"]) or not m["parents"]


def _tree_legend(atlas: dict, styles: dict) -> list[dict]:
    """Legend-only traces (no points): one per tree up to LEGEND_TREES, a "more trees" entry, the root marker."""
    sizes = Counter(m["tree"] for m in atlas["models"])
    roots = {t["id"]: t["root"] for t in atlas["trees"]}
    trees = sorted(styles, key=_tree_key)
    out = []
    for t in trees[:LEGEND_TREES]:
        name = f"tree {t}: {roots.get(t, '?')} ({sizes.get(t, 0)} models)"
        out.append(_legend_only(html.escape(name), styles[t][0], styles[t][1], 10, 0.6))
    if len(trees) > LEGEND_TREES:
        out.append(_legend_only(f"... {len(trees) - LEGEND_TREES} more trees", "#fff", "circle-open", 10, 0.6))
    out.append(_legend_only("root (larger, outlined)", "#ddd", "circle", 14, 2.5))
    return out


def _legend_only(name: str, colour: str, symbol: str, size: float, outline: float) -> dict:
    return {"type": "scatter", "mode": "markers", "x": [None], "y": [None], "name": name, "hoverinfo": "skip",
            "legendgroup": "trees", "legendgrouptitle": {"text": "trees"},
            "marker": {"color": colour, "symbol": symbol, "size": size, "line": {"color": "#111", "width": outline}}}


# --------------------------------------------------------------------------- the page

def first_root(atlas: dict) -> str:
    """The model the panel shows first: the root of the first tree (by tree id), else the first model."""
    roots = [m for m in atlas["models"] if _is_root(m)]
    if not roots:
        return atlas["models"][0]["id"]
    return min(roots, key=lambda m: _tree_key(m["tree"]))["id"]


def summary(atlas: dict) -> str:
    """E.g. '30 models · 3 trees · 29 edges: 21 fine-tune, 6 lora, 2 merge (1 of them to an extra merge parent)'."""
    kinds = Counter(e["type"] for e in atlas["edges"])
    extra = sum(bool(e["extra_parent"]) for e in atlas["edges"])
    parts = [f"{kinds[t]} {t}" for t in EDGE_TYPES if kinds[t]]
    n_trees = len(atlas["trees"]) or len({m["tree"] for m in atlas["models"]})
    text = (f"{len(atlas['models'])} models · {n_trees} tree{'s' if n_trees != 1 else ''} · "
            f"{len(atlas['edges'])} edges" + (": " + ", ".join(parts) if parts else ""))
    return text + (f" ({extra} of them to an extra merge parent)" if extra else "")


def script_json(obj: Any) -> str:
    """JSON safe inside a <script> element: every '<', '>' and '&' escaped (so no '</script>' or
    '<!--' can appear), non-finite floats as null."""
    text = json.dumps(_finite(obj), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def render(atlas: dict, title: str | None = None) -> str:
    """The atlas page as one HTML string: no external resource (plotly's JS is inlined)."""
    from plotly.offline import get_plotlyjs

    check(atlas)
    pos = layout(atlas)
    title = title or atlas.get("title") or "Model atlas"
    fig = figure(atlas, pos)
    panel_data = {"models": [{k: m[k] for k in MODEL_KEYS} for m in atlas["models"]],
                  "edges": [{k: e[k] for k in EDGE_KEYS} for e in atlas["edges"]],
                  "trees": atlas["trees"], "xy": [list(pos[m["id"]]) for m in atlas["models"]],
                  "first": first_root(atlas) if atlas["models"] else None}
    header = (f"<h1>{html.escape(title)}</h1><p class='summary'>{html.escape(summary(atlas))}</p>"
              + (f"<p class='folder'>folder: <code>{html.escape(str(atlas['folder']))}</code></p>" if atlas.get("folder") else "")
              + "<p class='hint'>Click a model to see it in the panel; drag to pan, scroll to zoom; "
                "arrows point from parent to child.</p>")
    return "".join([
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<header>{header}</header><main><div id='atlas-plot'></div>",
        "<aside id='atlas-panel'><p>Loading…</p></aside></main>",
        f"<script type='application/json' id='atlas-figure'>{script_json(fig)}</script>",
        f"<script type='application/json' id='atlas-data'>{script_json(panel_data)}</script>",
        f"<script>{get_plotlyjs()}</script>", f"<script>{GLUE_JS}</script></body></html>"])


def write_atlas_html(atlas: dict, path: str | os.PathLike, title: str | None = None) -> Path:
    """Write :func:`render`'s page to ``path`` atomically (a failed write leaves the old page)."""
    return atomic.write_text(path, render(atlas, title))


CSS = """
body{font-family:system-ui,sans-serif;margin:0;font-size:14px;color:#222}
header{padding:8px 16px;border-bottom:1px solid #ddd}header h1{font-size:20px;margin:4px 0}
header p{margin:2px 0}.summary{font-weight:600}.hint,.folder{color:#666;font-size:12px}
main{display:flex;height:calc(100vh - 110px);min-height:420px}
#atlas-plot{flex:1;min-width:0;height:100%}
#atlas-panel{width:360px;overflow:auto;border-left:1px solid #ddd;padding:8px 14px;box-sizing:border-box}
#atlas-panel h2{font-size:16px;word-break:break-all;margin:6px 0}#atlas-panel h3{font-size:13px;margin:12px 0 4px}
#atlas-panel table{border-collapse:collapse;width:100%}#atlas-panel td{border:1px solid #ddd;padding:2px 4px;
vertical-align:top;word-break:break-all;font-size:12px}#atlas-panel ul{margin:0;padding-left:18px}
#atlas-panel li{word-break:break-all;font-size:12px}#atlas-panel a{color:#1F5FA8;cursor:pointer}
.swatch{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px}
.agree{color:#2a7a2a}.differ{color:#b22222}.muted{color:#777}
"""

# The glue: parse the two JSON blobs, draw, record the render probe, fill the panel on click.
# Every text shown goes through textContent (never innerHTML), so a model name is never markup.
GLUE_JS = r"""
(function () {
  "use strict";
  var fig = JSON.parse(document.getElementById("atlas-figure").textContent);
  var atlas = JSON.parse(document.getElementById("atlas-data").textContent);
  var gd = document.getElementById("atlas-plot");
  var panel = document.getElementById("atlas-panel");
  var index = new Map(), edgeOf = new Map(), roots = new Map(), colourOf = new Map();
  atlas.models.forEach(function (m, i) { index.set(m.id, i); });
  atlas.edges.forEach(function (e) { edgeOf.set(e.parent + "\u0000" + e.child, e); });
  atlas.trees.forEach(function (t) { roots.set(String(t.id), t.root); });
  var traceOf = {};
  fig.data.forEach(function (t, i) { if (t.uid) { traceOf[t.uid] = i; } });
  var nodeTrace = fig.data[traceOf.nodes];
  atlas.models.forEach(function (m, i) { colourOf.set(m.id, nodeTrace.marker.color[i]); });

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (cls) { e.className = cls; }
    return e;
  }
  function num(v, d) { return (typeof v === "number" && isFinite(v)) ? v.toFixed(d === undefined ? 2 : d) : "n/a"; }
  function link(id) {
    var a = el("a", id);
    a.href = "#";
    a.addEventListener("click", function (ev) { ev.preventDefault(); if (index.has(id)) { show(index.get(id), true); } });
    return a;
  }
  function edgeText(e) {
    if (!e) { return " (no edge recorded)"; }
    return " · " + e.type + (e.extra_parent ? " (extra parent)" : "") + " · confidence " + num(e.confidence)
      + " · distance " + num(e.distance, 4);
  }
  function section(title) { panel.appendChild(el("h3", title)); }
  function list(items, empty) {
    if (!items.length) { panel.appendChild(el("p", empty, "muted")); return; }
    var ul = el("ul");
    items.forEach(function (li) { ul.appendChild(li); });
    panel.appendChild(ul);
  }

  function show(i, moveRing) {
    var m = atlas.models[i];
    panel.textContent = "";
    var h = el("h2");
    var sw = el("span", null, "swatch");
    sw.style.background = colourOf.get(m.id);
    h.appendChild(sw); h.appendChild(document.createTextNode(m.id));
    panel.appendChild(h);
    panel.appendChild(el("p", "tree " + m.tree + " (root: " + (roots.get(String(m.tree)) || "?") + ")"
      + (m.is_root ? " · this model is the root" : "") + " · kurtosis " + num(m.kurtosis, 3)));

    section("base model");
    var p = el("p");
    p.appendChild(document.createTextNode("declared: " + (m.declared_base_model === null ? "none" : m.declared_base_model)));
    p.appendChild(el("br"));
    var said = m.parents.length ? m.parents[0] : null;
    p.appendChild(document.createTextNode("weights say: "));
    if (said === null) {
      p.appendChild(document.createTextNode("no parent (a root)"));
    } else {
      p.appendChild(document.createTextNode("parent "));
      p.appendChild(link(said));
    }
    if (m.declared_base_model !== null) {
      var same = m.declared_base_model === said;
      p.appendChild(el("span", same ? " (agree)" : " (differ)", same ? "agree" : "differ"));
    }
    panel.appendChild(p);

    section("parents");
    list(m.parents.map(function (q, k) {
      var li = el("li");
      li.appendChild(link(q));
      li.appendChild(document.createTextNode((k === 0 ? " (primary)" : "") + edgeText(edgeOf.get(q + "\u0000" + m.id))));
      return li;
    }), "none: a root");

    section("children (" + m.children.length + ")");
    list(m.children.map(function (c) {
      var li = el("li");
      li.appendChild(link(c));
      li.appendChild(document.createTextNode(edgeText(edgeOf.get(m.id + "\u0000" + c))));
      return li;
    }), "none");

    section("expert prediction");
    if (m.expert === null) {
      panel.appendChild(el("p", "no expert routes here", "muted"));
    } else {
      var x = m.expert;
      var inside = typeof x.distance === "number" && typeof x.spread === "number" && x.distance <= x.spread;
      panel.appendChild(el("p", "expert " + x.expert + " of tree " + x.tree + ": distance " + num(x.distance, 3)
        + " vs spread " + num(x.spread, 3) + (inside ? " (within its spread)" : " (outside its spread)")));
      var classes = x.classes.slice(0, 200).map(function (c) { return el("li", c); });
      if (x.classes.length > 200) { classes.push(el("li", "... and " + (x.classes.length - 200) + " more", "muted")); }
      list(classes, "no classes predicted");
    }

    section("files (" + m.files.length + ")");
    list(m.files.map(function (f) { return el("li", f); }), "none");

    section("metadata");
    var keys = Object.keys(m.metadata || {});
    if (!keys.length) { panel.appendChild(el("p", "none", "muted")); } else {
      var table = el("table");
      keys.forEach(function (k) {
        var tr = el("tr"); tr.appendChild(el("td", k)); tr.appendChild(el("td", m.metadata[k])); table.appendChild(tr);
      });
      panel.appendChild(table);
    }
    panel.dataset.model = m.id;
    if (moveRing && gd.layout) {  // a relayout of one shape: nothing else is redrawn
      Plotly.relayout(gd, {"shapes[0].xanchor": atlas.xy[i][0], "shapes[0].yanchor": atlas.xy[i][1]});
    }
  }

  function finite(arr) {
    var n = 0;
    for (var k = 0; k < arr.length; k++) { if (arr[k] !== null && isFinite(arr[k])) { n++; } }
    return n;
  }
  function drawn(uid) {  // SVG: the path.point elements plotly made for the trace; WebGL: its points
    var t = fig.data[traceOf[uid]];
    if (t.type !== "scatter") { return finite(t.x); }
    var g = gd.querySelector(".scatterlayer .trace" + uid);  // plotly names each trace group "trace" + uid
    return g ? g.querySelectorAll("path.point").length : 0;
  }

  if (atlas.first !== null) { show(index.get(atlas.first), false); } else { panel.textContent = "This atlas has no models."; }
  var plotStart = performance.now();
  Plotly.newPlot(gd, fig.data, fig.layout, fig.config).then(function () {
    gd.on("plotly_click", function (ev) {
      var pt = ev.points && ev.points[0];
      if (!pt) { return; }
      var uid = pt.data.uid;
      if (uid === "nodes") { show(pt.pointIndex, true); }
      else if (uid === "arrows" || uid === "edge-labels") { show(index.get(atlas.edges[pt.pointIndex].child), true); }
    });
    document.body.dataset.renderer = nodeTrace.type === "scatter" ? "svg" : "webgl";
    document.body.dataset.nNodes = String(drawn("nodes"));
    document.body.dataset.nArrows = String(drawn("arrows"));
    document.body.dataset.plotMs = String(performance.now() - plotStart);
    document.body.dataset.renderedMs = String(performance.now());
  }, function (err) {
    document.body.dataset.renderError = String(err);
  });
})();
"""


# --------------------------------------------------------------------------- a made-up atlas

def example_atlas(n_models: int = 30, n_trees: int = 3, seed: int = 0, merge_every: int = 12) -> dict:
    """A made-up format-1 atlas (for tests, benchmarks and a look at the page): ``n_trees`` roots,
    every other model a child of a random earlier model of its tree (tree = index mod n_trees), with
    a random edge type; one model in ``merge_every`` (at random) is a merge of two earlier models of its tree.
    Some models declare their true base model, some another one, some none; some have an expert."""
    if n_trees < 1 or n_models < n_trees:
        raise ValueError(f"example_atlas: need 1 <= n_trees <= n_models, got n_trees={n_trees}, n_models={n_models}")
    rng = random.Random(seed)
    models: list[dict] = []
    edges: list[dict] = []
    by_tree: list[list[str]] = [[] for _ in range(n_trees)]
    for i in range(n_models):
        t = i % n_trees
        mid = f"tree{t}/base" if i < n_trees else f"org{rng.randrange(20)}/model-{i:05d}"
        parents: list[str] = []
        if i >= n_trees:
            pool = by_tree[t]
            parents = [pool[rng.randrange(len(pool))]]
            merge = rng.random() < 1 / merge_every and len(pool) > 1
            if merge:
                parents.append(rng.choice([p for p in pool[-20:] if p != parents[0]]))
            for k, p in enumerate(parents):
                edges.append({"parent": p, "child": mid, "type": "merge" if merge else rng.choice(EDGE_TYPES[:5]),
                              "confidence": round(rng.uniform(0.4, 1.0), 3), "distance": round(rng.uniform(0.01, 2), 4),
                              "extra_parent": k > 0})
        declared = rng.choice([parents[0] if parents else None, None, f"tree{rng.randrange(n_trees)}/base"])
        expert = None if rng.random() < 0.3 else {
            "expert": f"probex-tree{t}", "tree": f"tree{t}", "distance": round(rng.uniform(0, 2), 3),
            "spread": round(rng.uniform(0.5, 1.5), 3), "classes": sorted(rng.sample(["cat", "dog", "car", "ship", "frog",
                                                                                     "bird", "deer", "horse", "truck"], 3))}
        models.append({"id": mid, "tree": t, "is_root": not parents, "parents": parents, "children": [],
                       "files": ["config.json", "model.safetensors"] + (["adapter_config.json"] if i % 5 == 1 else []),
                       "metadata": {"license": rng.choice(["mit", "apache-2.0", "unknown"]), "library": "transformers"},
                       "declared_base_model": declared, "kurtosis": round(rng.gauss(3, 1), 3), "expert": expert})
        by_tree[t].append(mid)
    index = {m["id"]: m for m in models}
    for e in edges:
        index[e["parent"]]["children"].append(e["child"])
    trees = [{"id": t, "root": by_tree[t][0], "n_models": len(by_tree[t])} for t in range(n_trees)]
    return {"format_version": FORMAT_VERSION, "title": f"Example atlas ({n_models} models)", "folder": "example/",
            "models": models, "edges": edges, "trees": trees}
