"""Search by text: the embedding cache's format (the query side is tested in test_zeroshot.py)."""
import pytest
import torch

from probex_lib import aligned, search, zoo


def _folder(tmp_path, n=4):
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        zoo.save_model(tmp_path / "loras" / "models" / f"m{i}.safetensors",
                       {"blk.to_k.lora.up.weight": torch.randn(6, 2, generator=g),
                        "blk.to_k.lora.down.weight": torch.randn(2, 5, generator=g)}, {"model_id": f"m{i}"})
    torch.manual_seed(0)
    model = aligned.build("probex", [torch.randn(8, 6, 5)], 3, r_u=3, r_v=2, r_t=4)
    ckpt = aligned.save_aligned(tmp_path / "ck.safetensors", model, ["blk.to_k"], {"text_encoder": "minilm"})
    return tmp_path / "loras", ckpt


def test_an_older_search_cache_is_rebuilt_with_a_message(tmp_path, monkeypatch, capsys):
    folder, ckpt = _folder(tmp_path)
    _, z = search.embed_folder(folder, ckpt, tmp_path / "cache")
    [cache] = list((tmp_path / "cache").glob("*.safetensors"))
    meta = zoo.read_metadata(cache)
    assert meta["format_version"] == search.CACHE_FORMAT == 2 and meta["probex_orientation"] == "official-v2"
    deltas = aligned.lora_deltas
    monkeypatch.setattr(aligned, "lora_deltas", lambda *a, **k: pytest.fail("a current cache was not used"))
    _, again = search.embed_folder(folder, ckpt, tmp_path / "cache")
    assert (again == z).all()
    # as an older kit wrote it: no format version, embeddings of the transposed ProbeX
    old = {k: v for k, v in meta.items() if k not in ("format_version", "probex_orientation")}
    zoo.save_model(cache, {"embeddings": torch.zeros(len(z), z.shape[1])}, old)
    calls = []
    monkeypatch.setattr(aligned, "lora_deltas", lambda *a, **k: calls.append(1) or deltas(*a, **k))
    _, rebuilt = search.embed_folder(folder, ckpt, tmp_path / "cache")
    err = capsys.readouterr().err
    assert str(cache) in err and "older probex-kit" in err and "rebuilding" in err
    assert calls and (rebuilt == z).all() and zoo.read_metadata(cache)["format_version"] == 2


def test_an_older_checkpoint_is_refused_by_search(tmp_path):
    folder, ckpt = _folder(tmp_path)
    meta = {k: v for k, v in zoo.read_metadata(ckpt).items() if k != "format_version"}
    zoo.save_model(ckpt, zoo.load_tensors(ckpt), meta)
    with pytest.raises(zoo.ZooError, match=r"ck\.safetensors: aligned checkpoint written by an older probex-kit"):
        search.embed_folder(folder, ckpt, tmp_path / "cache")
