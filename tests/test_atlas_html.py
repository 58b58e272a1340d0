"""The model atlas page (probex_lib/atlas_html.py): the layout on a hand-made atlas, a page that
loads nothing from the network and escapes model names, and the page drawn by a real headless
Chromium (network blocked): 30 models with a merge, 1,000 models (SVG), 2,100 models (WebGL)."""
import json
import math
import re
import time
from html.parser import HTMLParser

import plotly.graph_objects as go
import pytest
from PIL import Image

from probex_lib import atlas_html

EVIL = "org/</script><b>bold</b>"  # a model name that would close the script tag and inject markup
EVIL_META = "<img src=x onerror=alert(1)>"
# after the render probe is set: note the model the panel shows first, "click" model K, note where the ring went
CLICK_PROBE = ("<script>var iv = setInterval(function () { if (!document.body.dataset.renderedMs) { return; }"
               " clearInterval(iv); var gd = document.getElementById('atlas-plot');"
               " document.body.dataset.firstShown = document.getElementById('atlas-panel').dataset.model;"
               " gd.emit('plotly_click', {points: [{data: {uid: 'nodes'}, pointIndex: K}]});"
               " var ring = gd.layout.shapes[0]; document.body.dataset.ring = ring.xanchor + ',' + ring.yanchor;"
               " document.body.dataset.clicked = 'yes'; }, 20);</script>")


def _model(mid, tree, parents=(), children=()):
    return {"id": mid, "tree": tree, "is_root": not parents, "parents": list(parents), "children": list(children),
            "files": ["model.safetensors"], "metadata": {}, "declared_base_model": None, "kurtosis": 3.0, "expert": None}


def _edge(parent, child, kind="fine-tune", extra=False):
    return {"parent": parent, "child": child, "type": kind, "confidence": 0.9, "distance": 0.1, "extra_parent": extra}


def _tiny(with_merge_parent: bool = True) -> dict:
    """Tree 0: r0 -> a, b; a -> c; b -> m. Tree 1: r1 -> d. m is a merge of b (primary) and d."""
    m_parents = ["b", "d"] if with_merge_parent else ["b"]
    models = [_model("r0", 0, (), ("a", "b")), _model("a", 0, ("r0",), ("c",)), _model("b", 0, ("r0",), ("m",)),
              _model("c", 0, ("a",)), _model("m", 0, m_parents), _model("r1", 1, (), ("d",)),
              _model("d", 1, ("r1",), ("m",) if with_merge_parent else ())]
    edges = [_edge("r0", "a"), _edge("r0", "b", "lora"), _edge("a", "c", "pruned"), _edge("b", "m", "merge"),
             _edge("r1", "d", "fp16")] + ([_edge("d", "m", "merge", True)] if with_merge_parent else [])
    return {"format_version": 1, "title": "tiny", "folder": "/tmp/tiny", "models": models, "edges": edges,
            "trees": [{"id": 0, "root": "r0", "n_models": 5}, {"id": 1, "root": "r1", "n_models": 2}]}


def _rename(atlas: dict, old: str, new: str) -> dict:
    """The same atlas with model ``old`` called ``new`` everywhere."""
    text = json.dumps(atlas).replace(json.dumps(old), json.dumps(new))
    return json.loads(text)


# --------------------------------------------------------------------------- layout

def test_layout_of_a_hand_made_atlas():
    gap = atlas_html.TREE_GAP
    assert atlas_html.layout(_tiny()) == {
        "r0": (0.5, 0.0), "a": (0.0, -1.0), "b": (1.0, -1.0), "c": (0.0, -2.0), "m": (1.0, -2.0),
        "r1": (2 + gap, 0.0), "d": (2 + gap, -1.0)}
    # an extra (merge) parent moves nothing
    assert atlas_html.layout(_tiny()) == atlas_html.layout(_tiny(with_merge_parent=False))


def test_layout_children_below_parents_trees_apart_and_deterministic():
    atlas = atlas_html.example_atlas(300, 5, seed=4)
    pos = atlas_html.layout(atlas)
    assert pos == atlas_html.layout(atlas_html.example_atlas(300, 5, seed=4))
    kids: dict[str, list[str]] = {}
    for m in atlas["models"]:
        if m["parents"]:
            p = m["parents"][0]
            assert pos[m["id"]][1] == pos[p][1] - 1, m["id"]
            kids.setdefault(p, []).append(m["id"])
    for p, ks in kids.items():  # a parent sits above its children's span
        xs = [pos[k][0] for k in ks]
        assert min(xs) <= pos[p][0] <= max(xs)
    spans = sorted((min(pos[m["id"]][0] for m in atlas["models"] if m["tree"] == t),
                    max(pos[m["id"]][0] for m in atlas["models"] if m["tree"] == t)) for t in range(5))
    for (_, right), (left, _) in zip(spans, spans[1:]):
        assert left - right >= atlas_html.TREE_GAP + 1
    assert len(set(pos.values())) == len(pos)  # no two models on one spot


def test_layout_of_a_10000_deep_chain_and_bad_parents():
    chain = {"format_version": 1, "title": "", "folder": "", "edges": [], "trees": [],
             "models": [_model(f"m{i}", 0, (f"m{i - 1}",) if i else ()) for i in range(10_000)]}
    pos = atlas_html.layout(chain)
    assert pos["m9999"] == (0.0, -9999.0)
    cycle = _tiny()
    cycle["models"][1]["parents"] = ["c"]  # a <- c <- a: no root above them
    with pytest.raises(ValueError, match=r"\['a', 'c'\].*cycle"):
        atlas_html.layout(cycle)
    ghost = _tiny()
    ghost["models"][3]["parents"] = ["nobody"]
    with pytest.raises(ValueError, match="'c'.*'nobody'"):
        atlas_html.check(ghost)
    with pytest.raises(ValueError, match="format_version 2"):
        atlas_html.check({**_tiny(), "format_version": 2})
    wrong = _tiny()
    wrong["edges"][0]["type"] = "distilled"
    with pytest.raises(ValueError, match="'distilled'"):
        atlas_html.check(wrong)


def test_arrow_angles_point_from_parent_to_child():
    down, right, up_left = (0.0, -1.0), (1.0, 0.0), (-1.0, 1.0)
    assert atlas_html.arrow_angle((0, 0), down, 1.0) == pytest.approx(180)
    assert atlas_html.arrow_angle((0, 0), right, 1.0) == pytest.approx(90)
    assert atlas_html.arrow_angle((0, 0), up_left, 1.0) == pytest.approx(-45)
    assert atlas_html.arrow_angle((0, 0), (1.0, -1.0), 2.0) == pytest.approx(180 - 26.565, abs=1e-3)


# --------------------------------------------------------------------------- the page's source

class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


def test_figure_is_valid_plotly_svg_and_webgl():
    for n, kind in ((30, "scatter"), (atlas_html.GL_ABOVE + 1, "scattergl")):
        fig = atlas_html.figure(atlas_html.example_atlas(n, 4, seed=1))
        go.Figure(data=fig["data"], layout=fig["layout"])  # raises on any attribute plotly does not know
        by_uid = {t["uid"]: t for t in fig["data"] if "uid" in t}
        assert {by_uid[u]["type"] for u in ("nodes", "arrows", "edge-labels")} == {kind}


def test_page_is_self_contained_and_escapes_names(tmp_path):
    atlas = _rename(atlas_html.example_atlas(30, 3, seed=0), "org10/model-00003", EVIL)
    atlas["models"][5]["metadata"]["note"] = EVIL_META
    page = atlas_html.write_atlas_html(atlas, tmp_path / "atlas.html")
    source = page.read_text()
    parser = _Tags()
    parser.feed(source)
    refs = [v for _, attrs in parser.tags for k, v in attrs.items() if k in ("src", "href", "srcset", "poster", "data") and v]
    assert not [r for r in refs if re.match(r"\s*(https?:)?//", r, re.I)], refs
    css = "\n".join(parser.styles)
    assert css and not re.search(r"url\(|@import", css, re.I)
    assert not [attrs for t, attrs in parser.tags if t in ("script", "iframe", "link", "img") and attrs.get("src")]
    assert [t for t, _ in parser.tags].count("script") == 4  # figure JSON, panel JSON, plotly, glue
    assert "</script><b>" not in source and EVIL_META not in source
    blob = re.search(r"<script type='application/json' id='atlas-data'>(.*?)</script>", source, re.S).group(1)
    data = json.loads(blob)
    assert EVIL in [m["id"] for m in data["models"]] and data["first"] == "tree0/base"
    assert data["models"][5]["metadata"]["note"] == EVIL_META


# --------------------------------------------------------------------------- in the browser

def _body(dom: str) -> dict[str, str]:
    tag = re.search(r"<body([^>]*)>", dom).group(1)
    return dict(re.findall(r'data-([\w-]+)="([^"]*)"', tag))


def _points(dom: str, uid: str) -> int:
    """path.point elements inside plotly's group of the trace ``uid`` (SVG traces)."""
    start = dom.index(f'class="trace scatter trace{uid}"')
    end = dom.find('class="trace scatter trace', start + 1)
    return dom[start:end if end > 0 else len(dom)].count('<path class="point"')


def _point_paths(dom: str, uid: str) -> list[tuple[tuple[float, float], list[tuple[float, float]]]]:
    """(translate, vertices of d) of each path.point of trace ``uid``, in the trace's point order."""
    start = dom.index(f'class="trace scatter trace{uid}"')
    end = dom.find('class="trace scatter trace', start + 1)
    out = []
    for tx, ty, d in re.findall(r'<path class="point" transform="translate\(([-\d.e]+),([-\d.e]+)\)" d="([^"]*)"',
                                dom[start:end if end > 0 else len(dom)]):
        nums = [float(v) for v in re.findall(r"-?[\d.]+(?:e-?\d+)?", d)]
        out.append(((float(tx), float(ty)), list(zip(nums[::2], nums[1::2]))))
    return out


def _colours_present(png, colours: tuple[str, ...], tolerance: int = 0) -> dict[str, int]:
    """Pixels of each colour ('#RRGGBB') on the screenshot, within ``tolerance`` per channel."""
    pixels = Image.open(png).convert("RGB").getcolors(maxcolors=1 << 22)
    assert pixels is not None and len(pixels) > 2, "blank screenshot"
    out = {}
    for c in colours:
        rgb = tuple(int(c[i:i + 2], 16) for i in (1, 3, 5))
        out[c] = sum(n for n, p in pixels if max(abs(a - b) for a, b in zip(p, rgb)) <= tolerance)
    return out


def test_atlas_of_30_models_renders_in_chromium(tmp_path, chromium):
    atlas = _rename(atlas_html.example_atlas(30, 3, seed=0), "org10/model-00003", EVIL)
    merges = [m for m in atlas["models"] if len(m["parents"]) == 2]
    assert merges, "the example should hold a merge of two parents"
    page = atlas_html.write_atlas_html(atlas, tmp_path / "atlas.html")
    evil = [m["id"] for m in atlas["models"]].index(EVIL)
    probed = page.with_name("probed.html")
    probed.write_text(page.read_text().replace("</body>", CLICK_PROBE.replace("K", str(evil)) + "</body>"))

    dom = chromium.dump_dom(probed)
    body = _body(dom)
    assert body.get("renderer") == "svg" and "rendered-ms" in body, body
    assert int(body["n-nodes"]) == _points(dom, "nodes") == 30
    assert int(body["n-arrows"]) == _points(dom, "arrows") == len(atlas["edges"])
    assert _points(dom, "edge-labels") == len(atlas["edges"])
    # on screen, every arrowhead sits on its edge ARROW_AT of the way to the child and points at it
    nodes = dict(zip([m["id"] for m in atlas["models"]], [xy for xy, _ in _point_paths(dom, "nodes")]))
    for e, (tip, vertices) in zip(atlas["edges"], _point_paths(dom, "arrows")):
        (px, py), (cx, cy) = nodes[e["parent"]], nodes[e["child"]]
        k = atlas_html.ARROW_AT
        assert abs(tip[0] - (px + k * (cx - px))) < 1.5 and abs(tip[1] - (py + k * (cy - py))) < 1.5, e
        assert vertices[0] == (0, 0) and len(vertices) == 3  # plotly's arrow: its tip on the point, rotated in d
        back = ((vertices[1][0] + vertices[2][0]) / 2, (vertices[1][1] + vertices[2][1]) / 2)
        cos = -(back[0] * (cx - px) + back[1] * (cy - py)) / math.hypot(*back) / math.hypot(cx - px, cy - py)
        assert cos > 0.99, (e, cos)
    assert body.get("first-shown") == "tree0/base" and body.get("clicked") == "yes"
    x, y = atlas_html.layout(atlas)[EVIL]
    assert [float(v) for v in body["ring"].split(",")] == [x, y]
    panel = re.search(r'<aside id="atlas-panel"([^>]*)>(.*?)</aside>', dom, re.S)
    assert 'data-model="org/&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;"' in panel.group(1)
    assert "org/&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in panel.group(2) and "<b>" not in panel.group(2)
    parent = atlas["models"][evil]["parents"][0]
    assert f"weights say: parent <a href=\"#\">{parent}</a>" in panel.group(2)
    assert "expert probex-tree0" in panel.group(2) or "no expert routes here" in panel.group(2)

    shot = chromium.screenshot(page, tmp_path / "atlas.png")
    seen = _colours_present(shot, atlas_html.TREE_PALETTE[:3] + (atlas_html.EDGE_COLOURS["merge"],))
    assert all(n >= 20 for n in seen.values()), seen  # the three trees' nodes and the merge edges are drawn


def test_atlas_of_1000_models_renders_in_chromium(tmp_path, chromium, record_property):
    atlas = atlas_html.example_atlas(1000, 8, seed=1)
    page = atlas_html.write_atlas_html(atlas, tmp_path / "atlas.html")
    t = time.perf_counter()
    dom = chromium.dump_dom(page)
    record_property("wall_s", round(time.perf_counter() - t, 2))
    body = _body(dom)
    assert "rendered-ms" in body, body.get("render-error", "no render probe in the DOM")
    record_property("rendered_ms", body["rendered-ms"])
    assert body["renderer"] == "svg"
    assert int(body["n-nodes"]) == _points(dom, "nodes") == 1000
    assert int(body["n-arrows"]) == _points(dom, "arrows") == len(atlas["edges"])


def test_atlas_above_the_webgl_threshold_renders_in_chromium(tmp_path, chromium):
    n = atlas_html.GL_ABOVE + 100
    atlas = atlas_html.example_atlas(n, 4, seed=2)
    page = atlas_html.write_atlas_html(atlas, tmp_path / "atlas.html")
    body = _body(chromium.dump_dom(page))
    assert body.get("renderer") == "webgl", body
    assert int(body["n-nodes"]) == n and int(body["n-arrows"]) == len(atlas["edges"])
    seen = _colours_present(chromium.screenshot(page, tmp_path / "atlas.png"), atlas_html.TREE_PALETTE[:4], 12)
    assert all(c >= 20 for c in seen.values()), seen  # WebGL drew every tree's nodes
