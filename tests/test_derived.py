"""probex-lineage (probex_lib.derived): is B derived from A? A fine-tune and its parent are "derived",
two unrelated models are "not derived", against unrelated null models and against permuted copies of
B; bad inputs are errors naming the file (exit 2)."""
import json

import pytest
import torch
from safetensors.torch import save_file

from probex_lib import derived, lineage

D = 16
LAYERS = [f"encoder.layer.0.{n}.weight" for n in ("attention.q_proj", "attention.k_proj", "attention.v_proj", "output.dense")]
BIAS = "encoder.layer.0.output.dense.bias"


def _root(seed, d=D):
    """Laplace(0, 0.1) 2-D layers (by the inverse CDF) and a Gaussian bias."""
    g = torch.Generator().manual_seed(seed)
    w = {}
    for k in LAYERS:
        u = torch.rand(d, d, generator=g) - 0.5
        w[k] = -0.1 * torch.sign(u) * torch.log1p(-2 * u.abs())
    w[BIAS] = 0.1 * torch.randn(d, generator=g)
    return w


def _save(path, w):
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: t.contiguous() for k, t in w.items()}, str(path))
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """parent, its full fine-tune, an unrelated model, and a folder of 4 other unrelated models (the null)."""
    root = tmp_path_factory.mktemp("derived")
    parent = _root(0)
    g = torch.Generator().manual_seed(1)
    child = {k: v + 0.02 * torch.randn(v.shape, generator=g) for k, v in parent.items()}
    for i in range(4):
        _save(root / "null" / f"u{i}.safetensors", _root(100 + i))
    return {"root": root, "parent": _save(root / "parent.safetensors", parent), "child": _save(root / "child.safetensors", child),
            "other": _save(root / "other.safetensors", _root(7)), "null": root / "null"}


def _main(capsys, *argv):
    rc = derived.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_parent_and_fine_tune_are_derived_against_unrelated_models(pair, capsys):
    rc, out, err = _main(capsys, pair["parent"], pair["child"], "--null", pair["null"], "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert {"verdict", "score", "z", "percentile", "n_null"} <= set(res)
    assert res["verdict"] == "derived" and res["z"] >= lineage.DERIVED_Z and res["percentile"] == 100.0
    assert res["n_null"] == 6 and res["layers"] == len(LAYERS)  # every pair of the 4 null models
    assert res["null"].startswith("6 pairs of 4 models given as unrelated")
    assert res["direction"].startswith("A -> B")  # fine-tuning lowered the kurtosis

    rc, out, _ = _main(capsys, pair["parent"], pair["child"], "--null", pair["null"])
    assert rc == 0 and out.split(":")[0] == "derived"
    assert "among 6 pairs of 4 models given as unrelated" in out


def test_unrelated_models_are_not_derived_against_unrelated_models(pair, capsys):
    rc, out, err = _main(capsys, pair["parent"], pair["other"], "--null", pair["null"], "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert res["verdict"] == "not derived" and res["z"] < lineage.DERIVED_Z
    rc, out, _ = _main(capsys, pair["other"], pair["parent"], "--null", pair["null"])
    assert rc == 0 and out.split(":")[0] == "not derived"


def test_without_a_null_folder_the_permuted_copies_are_the_null(pair, capsys):
    rc, out, err = _main(capsys, pair["parent"], pair["child"], "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert res["verdict"] == "derived" and res["n_null"] == derived.N_PERMUTATIONS
    assert res["null"].startswith(f"{derived.N_PERMUTATIONS} neuron-permuted copies of B")
    rc, out, _ = _main(capsys, pair["parent"], pair["other"])
    assert rc == 0 and out.split(":")[0] == "not derived"
    assert f"among {derived.N_PERMUTATIONS} neuron-permuted copies of B" in out and "pass --null" in out


def test_bad_inputs_are_errors_naming_the_file(pair, tmp_path, capsys):
    two = tmp_path / "two"
    _save(two / "m0.safetensors", _root(20))
    _save(two / "m1.safetensors", _root(21))
    rc, out, err = _main(capsys, two, pair["child"])
    assert rc == 2 and out == ""
    assert err.startswith(f"error: {two}: A must be one model (a checkpoint file or one model's folder); found 2: ['m0', 'm1']")

    wide = {**_root(22), LAYERS[0]: torch.zeros(D, D + 1)}
    mixed = tmp_path / "mixed"
    for i in range(3):
        _save(mixed / f"u{i}.safetensors", _root(30 + i))
    odd = _save(mixed / "u3.safetensors", wide)
    rc, _, err = _main(capsys, pair["parent"], pair["child"], "--null", mixed)
    assert rc == 2 and err.startswith(f"error: {odd}: null model 'u3' is another architecture than A and B "
                                      f"('{LAYERS[0]}' is (16, 17) there, (16, 16) in A)"), err

    few = tmp_path / "few"
    for i in range(2):
        _save(few / f"u{i}.safetensors", _root(40 + i))
    rc, _, err = _main(capsys, pair["parent"], pair["child"], "--null", few)
    assert rc == 2 and err.startswith(f"error: ['{few}']: 2 null model(s); need at least 3 unrelated models"), err

    b_wide = _save(tmp_path / "b_wide.safetensors", wide)
    rc, _, err = _main(capsys, pair["parent"], b_wide)
    assert rc == 2 and err.startswith(f"error: {pair['parent']} and {b_wide}: different architectures "
                                      f"(tensors differ: ['{LAYERS[0]}'])"), err
    alien = _save(tmp_path / "alien.safetensors", {"conv.weight": torch.zeros(4, 4)})
    rc, _, err = _main(capsys, pair["parent"], alien)
    assert rc == 2 and err.startswith(f"error: {pair['parent']} and {alien}: no 2-D tensor of the same name and shape"), err


def test_a_and_b_are_left_out_of_a_null_folder_that_holds_them(tmp_path):
    """A user's own folder as the null: A and B themselves must not be null models (the output says so)."""
    import json

    from probex_lib import derived
    from safetensors.torch import save_file
    import torch

    g = torch.Generator().manual_seed(3)
    folder = tmp_path / "mine"
    folder.mkdir()
    roots = {f"r{i}": {"w": torch.randn(12, 12, generator=g) * 0.1} for i in range(4)}
    for name, t in roots.items():
        save_file(t, str(folder / f"{name}.safetensors"))
    child = {"w": roots["r0"]["w"] + 0.01 * torch.randn(12, 12, generator=g)}
    save_file(child, str(folder / "c0.safetensors"))
    res = derived.test_pair(folder / "r0.safetensors", folder / "c0.safetensors", [folder], calibration=None)
    assert "A and B themselves left out of the null (c0, r0)" in res["null"] and res["n_null"] == 3
    assert res["verdict"] == "derived" and res["direction"] in ("A -> B", "B -> A")
    unrelated = derived.test_pair(folder / "r1.safetensors", folder / "r2.safetensors", [folder], calibration=None)
    assert unrelated["direction"] is None and json.dumps(unrelated)
