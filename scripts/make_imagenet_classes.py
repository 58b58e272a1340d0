"""Build probex_lib/resources/imagenet_classes.tsv (ImageNet-1k: wnid, class index, name) once.

Source: the WordNet tables that timm ships (``timm/data/_info/``), read straight from a timm
wheel, so timm never becomes a dependency of the kit::

    python scripts/make_imagenet_classes.py                   # pip-downloads timm==1.0.31 first
    python scripts/make_imagenet_classes.py --wheel timm-1.0.31-py3-none-any.whl

* index: position of the wnid in ``imagenet_synsets.txt`` (the 1000 wnids sorted, the standard
  ImageNet-1k class order);
* name: the synset's first lemma (``imagenet_synset_to_lemma.txt``, as the official ProbeX
  table), made unique by :func:`unique_names`.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path

INFO = "timm/data/_info"
FILES = {"synsets": f"{INFO}/imagenet_synsets.txt", "lemmas": f"{INFO}/imagenet_synset_to_lemma.txt",
         "glosses": f"{INFO}/imagenet_synset_to_definition.txt"}
OUT = Path(__file__).resolve().parents[1] / "probex_lib" / "resources" / "imagenet_classes.tsv"
RULE = ("name = first lemma; where first lemmas collide, the member with the fewest lemmas (ties: the last "
        "wnid) keeps it, every other member gets ', ' + its next lemma, else the head noun of its gloss "
        "(last word before the first of ; , of for in on with that which), else its wnid")
_STOP = re.compile(r"[;,]| (?:of|for|in|on|with|that|which) ")


def gloss_head(gloss: str) -> str:
    """Head noun of a WordNet gloss's first phrase: 'large long-necked wading bird of marshes' -> 'bird'."""
    words = _STOP.split(gloss, maxsplit=1)[0].split()
    return words[-1] if words else ""


def unique_names(wnids: list[str], lemmas: dict[str, list[str]], glosses: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """{wnid: unique name} and the wnids whose name needed a qualifier (rule: :data:`RULE`)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for w in wnids:
        groups[lemmas[w][0]].append(w)
    names = {w: lemmas[w][0] for w in wnids}
    qualified = []
    for first, members in groups.items():
        if len(members) == 1:
            continue
        plain = max(members, key=lambda w: (-len(lemmas[w]), w))
        for w in members:
            if w == plain:
                continue
            taken = set(names.values())
            options = [*lemmas[w][1:], gloss_head(glosses.get(w, "")), w]
            names[w] = next(f"{first}, {q}" for q in options if q and f"{first}, {q}" not in taken)
            qualified.append(w)
    if len(set(names.values())) != len(names):
        raise SystemExit("names are still not unique")  # cannot happen: the wnid fallback is unique
    return names, sorted(qualified)


def read_wheel(wheel: Path) -> tuple[str, dict[str, str]]:
    """(timm version, {key of FILES: text}) from a timm wheel."""
    version = wheel.name.split("-")[1]
    with zipfile.ZipFile(wheel) as z:
        return version, {k: z.read(p).decode("utf-8") for k, p in FILES.items()}


def build(wheel: Path) -> tuple[str, list[str]]:
    """The TSV text and the wnids that needed a qualifier."""
    version, text = read_wheel(wheel)
    wnids = [line.strip() for line in text["synsets"].splitlines() if line.strip()]
    if len(wnids) != 1000 or wnids != sorted(wnids):
        raise SystemExit(f"{FILES['synsets']}: expected 1000 sorted wnids, got {len(wnids)}")
    lemmas = {w: [s.strip() for s in rest.split(",")] for w, rest in (l.split("\t", 1) for l in text["lemmas"].splitlines() if l)}
    glosses = dict(l.split("\t", 1) for l in text["glosses"].splitlines() if l)
    names, qualified = unique_names(wnids, lemmas, glosses)
    lines = [f"# source: timm {version} (PyPI wheel {wheel.name}): {FILES['synsets']}, {FILES['lemmas']}, "
             f"{FILES['glosses']}; written by scripts/make_imagenet_classes.py",
             f"# {RULE}; qualified here: {', '.join(f'{w} {names[w]!r}' for w in qualified)}",
             "wnid\tindex\tname"]
    lines += [f"{w}\t{i}\t{names[w]}" for i, w in enumerate(wnids)]
    return "\n".join(lines) + "\n", qualified


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", type=Path, help="a timm wheel (default: pip download timm==--version)")
    ap.add_argument("--version", default="1.0.31", help="timm version to download when no wheel is given")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel
        if wheel is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                            "-d", tmp, f"timm=={args.version}"], check=True)
            wheel = next(Path(tmp).glob("timm-*.whl"))
        text, qualified = build(wheel)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}: 1000 classes, {len(qualified)} names qualified")


if __name__ == "__main__":
    main()
