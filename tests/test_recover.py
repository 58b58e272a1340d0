"""The recover tool on folders of checkpoints with a known tree."""
import json

import pytest
import torch
from safetensors.torch import save_file

from probex_lib import recover

PARENT = {"root": None, "a": "root", "b": "root", "a1": "a", "a2": "a", "b1": "b"}


def _laplace(shape, g):
    """Laplace(0, 1) samples (kurtosis 6) from generator ``g``, by the inverse CDF."""
    u = torch.rand(shape, generator=g) - 0.5
    return -torch.sign(u) * torch.log1p(-2 * u.abs())


def _write_tree(folder, seed=0, prefix="", layout="files"):
    """A simulated tree: each child = 0.85 * parent + Gaussian noise (fine-tuning lowers kurtosis)."""
    g = torch.Generator().manual_seed(seed)
    weights = {}
    for name, par in PARENT.items():
        if par is None:
            w = {"l1.weight": _laplace((96, 96), g), "l2.weight": _laplace((48, 96), g)}
        else:
            w = {k: 0.85 * v + 0.45 * torch.randn(v.shape, generator=g) for k, v in weights[par].items()}
        weights[name] = w
        if layout == "files":
            save_file(w, str(folder / f"{prefix}{name}.safetensors"))
        else:  # Hugging Face save_pretrained folders, sharded
            d = folder / f"{prefix}{name}"
            d.mkdir(parents=True)
            save_file({"l1.weight": w["l1.weight"]}, str(d / "model-00001-of-00002.safetensors"))
            save_file({"l2.weight": w["l2.weight"]}, str(d / "model-00002-of-00002.safetensors"))
    return weights


def test_recovers_two_trees_from_files_and_writes_outputs(tmp_path):
    torch.manual_seed(0)
    _write_tree(tmp_path, 0, "x_")
    _write_tree(tmp_path, 1, "y_", layout="dirs")
    (g,) = recover.recover(tmp_path)
    assert len(set(g.cluster)) == 2
    edges = set(g.edges())
    expected = {(f"{p}{par}", f"{p}{c}") for p in ("x_", "y_") for c, par in PARENT.items() if par}
    assert edges == expected
    files = recover.save_graph(g, tmp_path / "out")
    assert all(f.exists() for f in files)
    payload = json.loads((tmp_path / "out" / "graph.json").read_text())
    assert len(payload["edges"]) == 10 and (tmp_path / "out" / "graph.graphml").exists()
    assert (tmp_path / "out" / "tree.png").stat().st_size > 1000
    truth = {f"x_{c}": (f"x_{p}" if p else None) for c, p in PARENT.items()}
    assert recover.score_against_truth(g, _json(tmp_path / "t.json", truth)) == 1.0
    with pytest.raises(recover.RecoverError, match=r"u.json: no model of the folder has a parent there"):
        recover.score_against_truth(g, _json(tmp_path / "u.json", {"ghost": "x_a"}))
    # the kit's truth.json: lists of parents; a merge is right only with both parents
    listed = {m: [p] if p else [] for m, p in truth.items()} | {"ghost": []}
    assert recover.score_against_truth(g, _json(tmp_path / "l.json", listed)) == 1.0
    wrong = listed | {"x_a1": ["x_a", "x_b"]}
    assert recover.score_against_truth(g, _json(tmp_path / "w.json", wrong)) == pytest.approx(4 / 5)
    with pytest.raises(recover.RecoverError, match="nope.json: cannot read a truth file"):
        recover.score_against_truth(g, tmp_path / "nope.json")


def _json(path, obj):
    path.write_text(json.dumps(obj))
    return path


def test_cli_prints_edges_and_errors(tmp_path, capsys):
    torch.manual_seed(0)
    _write_tree(tmp_path)
    assert recover.main([str(tmp_path), "--out", str(tmp_path / "o")]) == 0
    assert "root -> a" in capsys.readouterr().out
    assert recover.main([str(tmp_path / "nothing")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_bad_folders_are_clear_errors(tmp_path):
    torch.manual_seed(0)
    with pytest.raises(recover.RecoverError, match="no .safetensors checkpoints"):
        recover.recover(tmp_path)
    save_file({"l1.weight": torch.randn(4, 4)}, str(tmp_path / "one.safetensors"))
    with pytest.raises(recover.RecoverError, match=r"only one model \('one'\)"):
        recover.recover(tmp_path)
    save_file({"l1.weight": torch.randn(5, 4)}, str(tmp_path / "two.safetensors"))
    with pytest.raises(recover.RecoverError, match="2 different architectures.*--split-by-architecture"):
        recover.recover(tmp_path)
    nan_dir = tmp_path / "nan"
    nan_dir.mkdir()
    bad = torch.randn(4, 4)
    bad[0, 0] = float("inf")
    save_file({"l1.weight": torch.randn(4, 4)}, str(nan_dir / "fine.safetensors"))
    save_file({"l1.weight": bad}, str(nan_dir / "three.safetensors"))
    with pytest.raises(Exception, match=r"three\.safetensors: tensor 'l1.weight' contains NaN or Inf"):
        recover.recover(nan_dir)


def test_lora_adapters_need_their_base_and_then_recover(tmp_path):
    g = torch.Generator().manual_seed(0)
    base = {"q.weight": _laplace((24, 24), g)}
    save_file(base, str(tmp_path / "base.safetensors"))
    ads = tmp_path / "adapters"
    for i, r in enumerate([2, 4, 8]):
        d = ads / f"m{i}"
        d.mkdir(parents=True)
        save_file({"base_model.model.q.lora_A.weight": torch.randn(r, 24, generator=g),
                   "base_model.model.q.lora_B.weight": torch.randn(24, r, generator=g)}, str(d / "adapter_model.safetensors"))
    with pytest.raises(recover.RecoverError, match="'m0' is a LoRA adapter without its base"):
        recover.recover(ads)
    (graph,) = recover.recover(ads, base=tmp_path / "base.safetensors", n_trees=1)
    assert graph.distance[0, 1] == 6 and graph.distance[1, 2] == 12  # rank of the difference of two adapters
    assert (graph.parent == -1).sum() == 1


def test_adapter_that_does_not_fit_its_base_is_named(tmp_path):
    save_file({"q.weight": torch.zeros(8, 8)}, str(tmp_path / "base.safetensors"))
    for i in range(2):
        d = tmp_path / "ads" / f"m{i}"
        d.mkdir(parents=True)
        save_file({"base_model.model.q.lora_A.weight": torch.randn(2, 8), "base_model.model.q.lora_B.weight": torch.randn(9, 2)},
                  str(d / "adapter_model.safetensors"))
    with pytest.raises(recover.RecoverError, match=r"m0/adapter_model\.safetensors: adapter layer 'base_model.model.q' is 9x8, base weight 'q.weight' is \(8, 8\)"):
        recover.recover(tmp_path / "ads", base=tmp_path / "base.safetensors")
    save_file({"k.weight": torch.zeros(8, 8)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(recover.RecoverError, match="has no matching weight in the base checkpoint"):
        recover.recover(tmp_path / "ads", base=tmp_path / "other.safetensors")


def test_adapters_of_different_layer_sets_are_named(tmp_path):
    save_file({"q.weight": torch.zeros(8, 8), "k.weight": torch.zeros(8, 8)}, str(tmp_path / "base.safetensors"))
    for i, layer in enumerate(["q", "k"]):
        d = tmp_path / "ads" / f"m{i}"
        d.mkdir(parents=True)
        save_file({f"base_model.model.{layer}.lora_A.weight": torch.randn(2, 8), f"base_model.model.{layer}.lora_B.weight": torch.randn(8, 2)},
                  str(d / "adapter_model.safetensors"))
    with pytest.raises(recover.RecoverError, match=r"m1/adapter_model\.safetensors: adapts layers \['k.weight', 'q.weight'\] differently from 'm0'"):
        recover.recover(tmp_path / "ads", base=tmp_path / "base.safetensors")


def test_small_trees_are_flagged_on_stderr(tmp_path, capsys):
    _write_tree(tmp_path, 0, "x_")
    _write_tree(tmp_path, 1, "y_")
    assert recover.main([str(tmp_path), "--out", str(tmp_path / "o"), "--calibration", ""]) == 0
    err = capsys.readouterr().err
    assert err.count("has 6 models: its edge directions rest on 6 kurtosis values") == 2
    (g,) = recover.recover(tmp_path, calibration=None)
    assert len(recover.small_tree_warnings(g)) == 2
