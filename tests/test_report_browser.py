"""REPORT.html opened in a real browser (headless Chromium, network blocked): the claims table is
there, every figure is an embedded PNG that loads, nothing is fetched from the network."""
import base64
import io
import re
from html.parser import HTMLParser

from PIL import Image

from probex_lib import claims, report

CLAIMS_LIST = """# papers
## Paper A
| id | what | paper says |
|---|---|---|
| P-1 | first claim | up |
| P-2 | second claim | down |
"""
FIG_SIZE = (200, 120)
MAGENTA = (255, 0, 255)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# after load, each image writes its decoded size into the DOM, where --dump-dom shows it
PROBE = ("<script>window.addEventListener('load', () => { for (const i of document.images) "
         "i.setAttribute('data-loaded', i.complete + ' ' + i.naturalWidth + 'x' + i.naturalHeight); });</script>")


class _Refs(HTMLParser):
    """Every tag, with its attributes."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(page: str) -> list[tuple[str, dict]]:
    parser = _Refs()
    parser.feed(page)
    return parser.tags


def _tiny_report(tmp_path):
    """A report built by report.build from one claims record with one PNG figure."""
    figures = tmp_path / "figures"
    figures.mkdir()
    Image.new("RGB", FIG_SIZE, MAGENTA).save(figures / "fig.png")
    claims.write_claims("01_alpha", "smoke", [claims.Claim("P-1", "first claim", "up", "0.9", "rule", "reproduced",
                                                           figure="fig.png")], figures)
    (tmp_path / "claims.md").write_text(CLAIMS_LIST)
    state = {"01_alpha_first": {"status": "ok", "profile": "smoke", "record": "01_alpha", "minutes": 0.1, "key": "k"}}
    _, page, _ = report.build(figures, state, "smoke", 0, tmp_path / "claims.md")
    return page


def test_report_html_is_self_contained_and_renders_offline_in_chromium(tmp_path, chromium):
    page = _tiny_report(tmp_path)
    source = page.read_text()

    # nothing to fetch: no http(s) or protocol-relative reference, no script, no external stylesheet
    tags = _tags(source)
    refs = [v for _, attrs in tags for k, v in attrs.items() if k in ("src", "href", "srcset", "poster", "data") and v]
    assert not [r for r in refs if re.match(r"\s*(https?:)?//", r, re.I)], refs
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", source, re.I) and "@import" not in source
    assert not [t for t, _ in tags if t in ("script", "iframe", "object", "embed")]
    imgs = [attrs["src"] for t, attrs in tags if t == "img"]
    assert imgs, "the report embeds no figure"
    for src in imgs:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png.startswith(PNG_SIGNATURE) and Image.open(io.BytesIO(png)).size == FIG_SIZE

    # the browser: the claims table is in the DOM it built, and every image decoded at its size
    dom = chromium.dump_dom(page)
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", dom, re.S)
    assert any("P-1" in r and "reproduced" in r for r in rows) and any("P-2" in r and claims.NOT_RUN in r for r in rows)
    probed = page.with_name("probed.html")
    probed.write_text(source.replace("</body>", PROBE + "</body>"))
    loaded = re.findall(r'data-loaded="([^"]*)"', chromium.dump_dom(probed))
    assert loaded == [f"true {FIG_SIZE[0]}x{FIG_SIZE[1]}"] * len(imgs), loaded

    # the screenshot is not blank, and the embedded figure is on it
    shot = Image.open(chromium.screenshot(page, tmp_path / "report.png")).convert("RGB")
    colours = shot.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 2, "blank screenshot"
    assert dict((c, n) for n, c in colours).get(MAGENTA, 0) >= FIG_SIZE[0] * FIG_SIZE[1] // 4, "the figure is not drawn"
