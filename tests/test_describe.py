"""probex-describe (and the lineage recovery under it) on a tiny synthetic folder with a known lineage:
two unrelated roots, full fine-tunes, a LoRA-like child, fp16 / int8 / pruned copies, a merge of two
siblings and a fine-tune of that merge; bad folders refused with nothing written; the atlas page in a
headless browser."""
import contextlib
import io
import json
import math
import re

import networkx as nx
import numpy as np
import pytest
import torch
import torch.nn.utils.prune as prune
from safetensors.torch import save_file

from probex_lib import atlas_html, atomic, describe, expert_store, lineage, recover
from probex_lib.probex import ProbeX

D = 16
Q, K, V, O = (f"encoder.layer.0.{n}.weight" for n in ("attention.q_proj", "attention.k_proj", "attention.v_proj", "output.dense"))
LAYERS = (Q, K, V, O)
BIAS = "encoder.layer.0.output.dense.bias"
# the true lineage: parents (a merge: both, either order) and the type of the edge(s) into each model
TRUTH = {"a": ([], ""), "a-ft1": (["a"], "fine-tune"), "a-ft2": (["a"], "fine-tune"), "a-ft3": (["a"], "fine-tune"),
         "a-lora": (["a"], "lora"), "a-ft1-fp16": (["a-ft1"], "fp16"), "a-ft2-int8": (["a-ft2"], "quantised"),
         "a-merge": (["a-ft1", "a-ft2"], "merge"), "a-merge-ft": (["a-merge"], "fine-tune"), "b": ([], ""), "b-ft1": (["b"], "fine-tune"),
         "b-ft2": (["b"], "fine-tune"), "b-ft1-pruned": (["b-ft1"], "pruned")}
TREE_A = {m for m in TRUTH if m.startswith("a")}
HF_MODEL = "b-ft2"  # stored as a save_pretrained folder with a model card declaring its base model
DECLARED = "org/b"
TYPE_RATE = {"fp16": 0.97, "quantised": 0.9, "pruned": 0.85, "merge": 0.8, "merge-child": 0.7}
LABELS = ["red", "green", "blue"]


# --------------------------------------------------------------------------- a folder with a known lineage


def _laplace(shape, g, scale=0.1):
    """Laplace(0, scale) by the inverse CDF: heavy-tailed, so fine-tuning noise lowers the kurtosis (MoTHer's prior)."""
    u = torch.rand(shape, generator=g) - 0.5
    return -scale * torch.sign(u) * torch.log1p(-2 * u.abs())


def _root(seed, d=D):
    g = torch.Generator().manual_seed(seed)
    w = {k: _laplace((d, d), g) for k in LAYERS}
    w[BIAS] = 0.1 * torch.randn(d, generator=g)
    return w


def _finetune(p, seed, std=0.02):
    """Every tensor moved by full-rank Gaussian noise."""
    g = torch.Generator().manual_seed(seed)
    return {k: v + std * torch.randn(v.shape, generator=g) for k, v in p.items()}


def _lora(p, seed, rank=2):
    """A rank-2 update of q and v; every other tensor bit-identical to the parent."""
    g = torch.Generator().manual_seed(seed)
    out = {k: v.clone() for k, v in p.items()}
    for k in (Q, V):
        out[k] = p[k] + 0.05 * torch.randn(D, rank, generator=g) @ torch.randn(rank, D, generator=g)
    return out


def _fp16(p):
    return {k: v.half().float() for k, v in p.items()}


def _int8(p):
    """Symmetric per-tensor int8: values on the grid k * max|w| / 127."""
    out = {}
    for k, v in p.items():
        step = v.abs().max() / 127
        out[k] = torch.round(v / step).clamp(-127, 127) * step
    return out


def _pruned(p):
    """torch's L1 unstructured pruning of 50% of every 2-D tensor."""
    out = dict(p)
    for k, v in p.items():
        if v.ndim == 2:
            lin = torch.nn.Linear(v.shape[1], v.shape[0], bias=False)
            lin.weight.data = v.clone()
            prune.l1_unstructured(lin, "weight", amount=0.5)
            out[k] = lin.weight.detach().clone()
    return out


def _save(folder, name, w):
    save_file({k: t.contiguous() for k, t in w.items()}, str(folder / f"{name}.safetensors"))


def _write_zoo(folder):
    """The TRUTH lineage as files (HF_MODEL as a save_pretrained folder); returns {id: tensors}."""
    folder.mkdir(parents=True, exist_ok=True)
    a, b = _root(0), _root(1)
    w = {"a": a, "a-ft1": _finetune(a, 10), "a-ft2": _finetune(a, 11), "a-ft3": _finetune(a, 12), "a-lora": _lora(a, 13),
         "b": b, "b-ft1": _finetune(b, 20), "b-ft2": _finetune(b, 21)}
    w["a-ft1-fp16"], w["a-ft2-int8"], w["b-ft1-pruned"] = _fp16(w["a-ft1"]), _int8(w["a-ft2"]), _pruned(w["b-ft1"])
    w["a-merge"] = {k: (w["a-ft1"][k] + w["a-ft2"][k]) / 2 for k in a}
    w["a-merge-ft"] = _finetune(w["a-merge"], 14)
    for name, t in w.items():
        if name == HF_MODEL:
            (folder / name).mkdir()
            _save(folder / name, "model", t)
            (folder / name / "README.md").write_text(f"---\nlicense: mit\nbase_model: {DECLARED}\n---\n# {name}\n")
            (folder / name / "config.json").write_text(json.dumps({"model_type": "bert"}))
        else:
            _save(folder, name, t)
    return w


def _small(folder, d=D, seed=5):
    """Three models of one tree (a root and two fine-tunes), 2-D layers d x d."""
    folder.mkdir(parents=True, exist_ok=True)
    r = _root(seed, d)
    for name, t in {"r": r, "r-ft1": _finetune(r, seed + 1), "r-ft2": _finetune(r, seed + 2)}.items():
        _save(folder, name, t)
    return folder


def _calibration(path):
    cal = lineage.Calibrator(mean=[0.0] * 4, scale=[1.0] * 4, weights=[0.8, -0.5, 1.0, 0.3], bias=0.2,
                             type_rate=TYPE_RATE, fitted_on="test")
    path.write_text(json.dumps(cal.to_json()))
    return path, cal


def _expert(path, layer_shape, centroid, spread):
    """A ProbeX expert on Q whose head ignores its input: it always predicts exactly LABELS[0]."""
    torch.manual_seed(0)
    model = ProbeX(*expert_store.matrix_shape(layer_shape), len(LABELS), r_u=2, r_v=2, r_t=3).eval()
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor([8.0, -8.0, -8.0]))
    return expert_store.save_tree_expert(path, model, layer=Q, layer_shape=layer_shape, labels=LABELS, tree="a",
                                         centroid=centroid, spread=spread, meta={})


def _no_nan(text):
    def refuse(c):
        raise AssertionError(f"non-finite {c} in JSON")
    return json.loads(text, parse_constant=refuse)


def _run(argv):
    """describe.main(argv) -> (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = describe.main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    root = tmp_path_factory.mktemp("describe")
    weights = _write_zoo(root / "zoo")
    cal_path, cal = _calibration(root / "calibration.json")
    q = {m: w[Q].double() for m, w in weights.items()}
    centroid = torch.stack([q[m] for m in sorted(TREE_A)]).mean(0)
    dist = {m: float(torch.linalg.vector_norm(x - centroid)) for m, x in q.items()}
    spread = 1.2 * max(dist[m] for m in TREE_A)
    assert spread < min(dist[m] for m in TRUTH if m not in TREE_A)  # tree b lies outside the expert's spread
    good = _expert(root / "expert-a.safetensors", (D, D), centroid.float().numpy(), spread)
    return {"root": root, "folder": root / "zoo", "weights": weights, "calibration": cal_path, "calibrator": cal,
            "expert": good}


@pytest.fixture(scope="module")
def atlas_run(zoo):
    """describe.main on the zoo, calibrated, with the expert: (out folder, exit code, stdout, stderr)."""
    out = zoo["root"] / "atlas"
    rc, stdout, stderr = _run([zoo["folder"], "--out", out, "--calibration", zoo["calibration"], "--expert", zoo["expert"]])
    return out, rc, stdout, stderr


# --------------------------------------------------------------------------- the recovered lineage


def _parents(g):
    return {m: [g.model_ids[p] for p in g.parents[i]] for i, m in enumerate(g.model_ids)}


def test_recover_attaches_artefacts_merges_and_types_the_edges(zoo, tmp_path):
    (g,) = recover.recover(zoo["folder"], calibration=None)
    assert g.model_ids == sorted(TRUTH)
    parents = _parents(g)
    for m, (true_parents, kind) in TRUTH.items():
        assert sorted(parents[m]) == sorted(true_parents), m
        assert g.edge_type[g.model_ids.index(m)] == kind, m
    by = dict(zip(g.model_ids, g.placed_by))
    assert {m for m, b in by.items() if b == "artefact"} == {"a-ft1-fp16", "a-ft2-int8", "b-ft1-pruned"}
    assert by["a-merge"] == "merge" and by["a-merge-ft"] == "merge-child"
    assert by["a"] == by["b"] == ""  # the merged siblings' parent (the merge is its nearest model) stays a root
    assert np.isnan(g.confidence).all()  # no calibration, no confidence

    files = recover.save_graph(g, tmp_path / "g")
    assert {f.name for f in files} >= {"graph.json", "graph.graphml", "tree.png"}
    payload = _no_nan((tmp_path / "g" / "graph.json").read_text())
    assert payload["trees"] == [{"tree": t, "root": r} for t, r in sorted(g.roots().items())]
    assert {t["root"] for t in payload["trees"]} == {"a", "b"}
    tree_of = {n["id"]: n["tree"] for n in payload["nodes"]}
    assert {m for m in TRUTH if tree_of[m] == tree_of["a"]} == TREE_A and len(set(tree_of.values())) == 2
    assert {n["id"] for n in payload["nodes"] if n["is_root"]} == {"a", "b"}
    edges = {(e["parent"], e["child"]): e for e in payload["edges"]}
    assert len(edges) == len(payload["edges"]) == sum(len(p) for p, _ in TRUTH.values()) == 12
    for (p, c), e in edges.items():
        assert e["type"] == TRUTH[c][1] and "confidence" not in e
    merge = [e for (p, c), e in edges.items() if c == "a-merge"]
    assert sorted(e["extra_parent"] for e in merge) == [False, True]
    assert not any(e["extra_parent"] for (p, c), e in edges.items() if c != "a-merge")
    assert edges["a", "a-lora"]["type"] == "lora" and edges["a", "a-ft1"]["type"] == "fine-tune"

    read = nx.read_graphml(tmp_path / "g" / "graph.graphml")
    assert set(read.edges) == set(edges)
    for (p, c), attrs in read.edges.items():
        assert attrs["type"] == TRUTH[c][1] and attrs["extra_parent"] == edges[p, c]["extra_parent"]
        assert "confidence" not in attrs


def test_calibrated_recovery_gives_every_edge_a_confidence(zoo, tmp_path):
    (g,) = recover.recover(zoo["folder"], calibration=zoo["calibration"])
    assert sorted(map(sorted, _parents(g).values())) == sorted(sorted(p) for p, _ in TRUTH.values())
    recover.save_graph(g, tmp_path)
    payload = _no_nan((tmp_path / "graph.json").read_text())
    cal = zoo["calibrator"]
    for e in payload["edges"]:
        assert 0 <= e["confidence"] <= 1, e
        i = g.model_ids.index(e["child"])
        if g.placed_by[i] == "mother":  # MoTHer's edges: the logistic model of the edge's features
            assert e["confidence"] == pytest.approx(float(cal.confidence(g.features[i][None])[0]))
        else:  # artefacts, merges and a merge's fine-tune: the calibration's rate of their kind
            kind = "merge-child" if g.placed_by[i] == "merge-child" else e["type"]
            assert e["confidence"] == TYPE_RATE[kind]
    read = nx.read_graphml(tmp_path / "graph.graphml")
    assert all(0 <= attrs["confidence"] <= 1 for attrs in read.edges.values())
    assert len(read.edges) == len(payload["edges"])


# --------------------------------------------------------------------------- the atlas


def test_describe_writes_atlas_cards_and_graph(zoo, atlas_run):
    out, rc, stdout, stderr = atlas_run
    assert rc == 0, stderr
    assert stdout.startswith("13 models, 2 tree(s), edges: 6 fine-tune, 1 fp16, 1 lora, 2 merge, 1 pruned, 1 quantised; "
                             f"{len(TREE_A)} routed to an expert"), stdout
    assert f"wrote {out}/atlas.html, atlas.json, cards/ (13 model cards), graph.json" in stdout
    atlas = _no_nan((out / "atlas.json").read_text())
    assert atlas["format_version"] == 1
    ids = [m["id"] for m in atlas["models"]]
    assert sorted(ids) == sorted(TRUTH) and len(set(ids)) == len(ids)
    assert len(atlas["edges"]) == 12
    for e in atlas["edges"]:
        assert e["parent"] in ids and e["child"] in ids and 0 <= e["confidence"] <= 1
    model = {m["id"]: m for m in atlas["models"]}
    for m, (true_parents, _) in TRUTH.items():
        assert sorted(model[m]["parents"]) == sorted(true_parents)
    assert model["a"]["children"] == ["a-ft1", "a-ft2", "a-ft3", "a-lora"]
    assert sorted(t["root"] for t in atlas["trees"]) == ["a", "b"]
    atlas_html.check(atlas)
    assert (out / "atlas.html").read_text().startswith("<!doctype html>")
    assert sorted(p.name for p in (out / "cards").iterdir()) == sorted(f"{m}.md" for m in TRUTH)
    graph = _no_nan((out / "graph.json").read_text())
    assert len(graph["edges"]) == 12 and (out / "graph.graphml").exists()

    # the save_pretrained folder: its declared base model beside the parent the weights give
    hf = model[HF_MODEL]
    assert hf["declared_base_model"] == DECLARED and hf["metadata"] == {"model_type": "bert"}
    assert hf["files"] == [str(zoo["folder"] / HF_MODEL / "model.safetensors")]
    card = (out / "cards" / f"{HF_MODEL}.md").read_text()
    assert "base_model: b\n" in card and "| parent (from the weights) | `b`: fine-tune, confidence " in card
    assert f"| base_model (declared by the model) | `{DECLARED}` (agrees with the weights) |" in card
    assert "| model_type | bert |" in card
    merge_card = (out / "cards" / "a-merge.md").read_text()
    assert "`a-ft1`: merge" in merge_card and "`a-ft2`: merge" in merge_card and "(extra merge parent)" in merge_card
    assert "| base_model (declared by the model) | none declared |" in merge_card
    assert "# base_model: none (a root of the recovered lineage)" in (out / "cards" / "a.md").read_text()


def test_expert_routes_the_models_of_its_tree_only(zoo, atlas_run):
    out, rc, _, stderr = atlas_run
    assert rc == 0, stderr
    atlas = json.loads((out / "atlas.json").read_text())
    routed = {m["id"]: m["expert"] for m in atlas["models"]}
    assert {m for m, ex in routed.items() if ex} == TREE_A
    for m in TREE_A:
        ex = routed[m]
        assert ex["classes"] == ["red"] and ex["tree"] == "a" and ex["expert"] == str(zoo["expert"])
        assert 0 <= ex["distance"] <= ex["spread"]
        assert "Predicted training classes: red." in (out / "cards" / f"{m}.md").read_text()
    assert "No saved expert routes here" in (out / "cards" / "b.md").read_text()


def test_expert_of_another_layer_shape_is_refused_naming_it(zoo, tmp_path):
    bad = _expert(tmp_path / "expert-8x16.safetensors", (8, D), np.zeros(8 * D, np.float32), 1.0)
    out = tmp_path / "out"
    rc, stdout, stderr = _run([zoo["folder"], "--out", out, "--calibration", "", "--expert", bad])
    assert rc == 2 and stdout == ""
    assert stderr.startswith(f"error: {bad}: expert of tree 'a' reads '{Q}' of shape (8, 16), these models have (16, 16)")
    assert not out.exists()


# --------------------------------------------------------------------------- refusals: nothing written


def _mixed(folder):
    _small(folder / "wide", D)
    _small(folder / "narrow", 8, seed=7)
    return folder, re.escape(f"{folder}: checkpoints of 2 different architectures")


def _pickle(folder):
    _small(folder)
    torch.save({Q: torch.zeros(D, D)}, folder / "x.pt")
    return folder, re.escape(f"{folder / 'x.pt'}: pickled checkpoints are never loaded")


def _truncated(folder):
    _small(folder)
    whole = (folder / "r-ft2.safetensors").read_bytes()
    (folder / "r-ft2.safetensors").write_bytes(whole[:-100])
    return folder, re.escape(f"{folder / 'r-ft2.safetensors'}: corrupt or truncated safetensors file")


def _orphan_adapter(folder):
    _small(folder)
    ad = folder / "ad"
    ad.mkdir()
    (ad / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2, "lora_alpha": 2,
                                                        "base_model_name_or_path": "org/missing-base"}))
    save_file({f"base_model.model.{Q[:-7]}.lora_A.weight": torch.randn(2, D),
               f"base_model.model.{Q[:-7]}.lora_B.weight": torch.randn(D, 2)}, str(ad / "adapter_model.safetensors"))
    return folder, re.escape(f"{ad / 'adapter_model.safetensors'}: 'ad' is a LoRA adapter without its base: "
                             f"adapter_config.json names base 'org/missing-base', which is not in the folder")


def _single(folder):
    folder.mkdir()
    _save(folder, "one", _root(3))
    return folder, re.escape("only one model ('one'): a Model Graph needs at least two")


@pytest.mark.parametrize("make", [_mixed, _pickle, _truncated, _orphan_adapter, _single])
def test_bad_folders_are_refused_naming_the_file_and_nothing_is_written(tmp_path, make):
    folder, message = make(tmp_path / "in")
    out = tmp_path / "out"
    rc, stdout, stderr = _run([folder, "--out", out, "--calibration", ""])
    assert rc == 2 and stdout == ""
    assert re.match(f"error: {message}", stderr), stderr
    assert not out.exists()


def test_split_by_architecture_recovers_each_group_as_its_own_trees(tmp_path):
    folder, _ = _mixed(tmp_path / "in")
    atlas, written = describe.describe(folder, tmp_path / "out", calibration=None, split_by_architecture=True)
    trees = {m["id"]: m["tree"] for m in atlas["models"]}
    assert sorted(trees) == sorted(f"{g}/{m}" for g in ("narrow", "wide") for m in ("r", "r-ft1", "r-ft2"))
    wide, narrow = ({t for m, t in trees.items() if m.startswith(g)} for g in ("wide/", "narrow/"))
    assert wide.isdisjoint(narrow) and len(atlas["trees"]) == len(wide | narrow)
    # one tree of 3 per group (which of 3 tiny models is the root is up to the kurtosis of 8x8 layers)
    assert sorted((t["root"].split("/")[0], t["n_models"]) for t in atlas["trees"]) == [("narrow", 3), ("wide", 3)]
    for k in (0, 1):
        group = _no_nan((tmp_path / "out" / f"group{k}" / "graph.json").read_text())
        assert len(group["nodes"]) == 3 and len(group["edges"]) == 2
    assert tmp_path / "out" / "atlas.json" in written


def test_a_failure_midway_leaves_the_atlas_folder_as_it_was(tmp_path, monkeypatch):
    folder = _small(tmp_path / "in")
    out = tmp_path / "out"

    def broken(*args, **kwargs):
        raise RuntimeError("render failed")

    with monkeypatch.context() as m:
        m.setattr(atlas_html, "render", broken)
        with pytest.raises(RuntimeError, match="render failed"):
            describe.describe(folder, out, calibration=None)
    assert not out.exists()

    describe.describe(folder, out, calibration=None, title="first")
    before = _snapshot(out)
    assert set(before) == {"atlas.json", "atlas.html", "cards/r.md", "cards/r-ft1.md", "cards/r-ft2.md", "graph.json",
                           "graph.graphml", "tree.png", "tree.pdf"}
    staged = []
    real_stage = atomic._stage

    def stage_then_fail(tmp, text):  # the last file of the unit fails: the 6 others are staged already
        staged.append(tmp)
        if ".graph.graphml." in tmp.name:
            raise OSError("disk full")
        real_stage(tmp, text)

    monkeypatch.setattr(atomic, "_stage", stage_then_fail)
    with pytest.raises(OSError, match="disk full"):
        describe.describe(folder, out, calibration=None, title="second")
    assert _snapshot(out) == before  # no new atlas, card or graph file, and no temporary left behind
    assert len(staged) == 7 and not any(p.exists() for p in staged)  # atlas.json/html, 3 cards, graph.json/graphml


# --------------------------------------------------------------------------- the page in a browser


def test_atlas_page_of_the_folder_renders_in_chromium(atlas_run, chromium):
    out, rc, _, stderr = atlas_run
    assert rc == 0, stderr
    atlas = json.loads((out / "atlas.json").read_text())
    dom = chromium.dump_dom(out / "atlas.html")
    body = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', re.search(r"<body([^>]*)>", dom).group(1)))
    assert "render-error" not in body, body["render-error"]
    assert int(body["n-nodes"]) == len(atlas["models"]) == len(TRUTH)
    assert int(body["n-arrows"]) == len(atlas["edges"]) == 12
    assert body.get("renderer") == "svg" and math.isfinite(float(body["rendered-ms"]))
