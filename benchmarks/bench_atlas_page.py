"""The model atlas page: how long a made-up atlas takes to write and to draw in headless Chromium.

    .venv/bin/python benchmarks/bench_atlas_page.py [--n 1000 10000] [--trees 8]

For each size: ``atlas_html.example_atlas`` (a forest with merges), the page written by
``write_atlas_html``, then opened by headless Chromium (tests/browser.py: network blocked, no GPU,
so WebGL runs on the CPU). Columns: page size; seconds to build and write the page in Python;
wall seconds of a ``--dump-dom`` run (browser start, parse, draw, serialise, exit); the page's own
render probe: ``renderedMs`` (navigation start to ``Plotly.newPlot`` resolved) and ``plotMs`` (of
that, inside ``newPlot``); points drawn. An empty page's ``--dump-dom`` wall time is the browser's
own overhead. Target: a 1,000-model page drawn (renderedMs) in under 5 s on a 2-core CPU.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

from probex_lib import atlas_html

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser import Chromium  # noqa: E402  (tests/browser.py: headless Chromium, network blocked)

TARGET_S = {1000: 5.0}  # models -> seconds for renderedMs


def _probe(dom: str) -> dict[str, str]:
    """The data-* attributes of <body> in a dumped DOM (the page's render probe)."""
    tag = re.search(r"<body([^>]*)>", dom)
    return dict(re.findall(r'data-([\w-]+)="([^"]*)"', tag.group(1))) if tag else {}


def measure(browser: Chromium, n: int, trees: int, folder: Path) -> dict:
    """One row: write the page of an ``n``-model example atlas, dump its DOM, read the probe."""
    atlas = atlas_html.example_atlas(n, trees, seed=0)
    t = time.perf_counter()
    page = atlas_html.write_atlas_html(atlas, folder / f"atlas_{n}.html")
    write_s = time.perf_counter() - t
    t = time.perf_counter()
    dom = browser.dump_dom(page, budget_ms=3000)
    wall_s = time.perf_counter() - t
    probe = _probe(dom)
    if "rendered-ms" not in probe:
        raise RuntimeError(f"{page}: the page did not render ({probe.get('render-error', 'no render probe in the DOM')})")
    return {"models": n, "edges": len(atlas["edges"]), "renderer": probe["renderer"], "mb": page.stat().st_size / 2**20,
            "write_s": write_s, "wall_s": wall_s, "rendered_s": float(probe["rendered-ms"]) / 1000,
            "plot_s": float(probe["plot-ms"]) / 1000, "nodes": int(probe["n-nodes"]), "arrows": int(probe["n-arrows"])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[1000], help="atlas sizes (models)")
    ap.add_argument("--trees", type=int, default=8, help="trees per atlas")
    args = ap.parse_args()
    browser = Chromium.ensure()
    with tempfile.TemporaryDirectory(prefix="probex-atlas-bench-") as tmp:
        folder = Path(tmp)
        empty = folder / "empty.html"
        empty.write_text("<!doctype html><html><body><p>empty</p></body></html>")
        t = time.perf_counter()
        browser.dump_dom(empty)
        baseline = time.perf_counter() - t
        rows = [measure(browser, n, args.trees, folder) for n in args.n]
    print(f"headless Chromium, empty page --dump-dom: {baseline:.2f} s wall (the browser's own overhead)")
    print(f"{'models':>7} {'edges':>6} {'renderer':>8} {'page MB':>8} {'write s':>8} {'dump-dom wall s':>16} "
          f"{'renderedMs':>11} {'plotMs':>8} {'drawn nodes/arrows':>19}  target")
    for r in rows:
        target = TARGET_S.get(r["models"])
        verdict = (f"< {target:.0f} s: {'met' if r['rendered_s'] < target else 'MISSED'}" if target else "-")
        print(f"{r['models']:>7} {r['edges']:>6} {r['renderer']:>8} {r['mb']:>8.2f} {r['write_s']:>8.2f} "
              f"{r['wall_s']:>16.2f} {r['rendered_s'] * 1000:>11.0f} {r['plot_s'] * 1000:>8.0f} "
              f"{r['nodes']:>9}/{r['arrows']:<9}  {verdict}")


if __name__ == "__main__":
    main()
