"""Text-aligned ProbeX pieces: LoRA deltas, the contrastive fit, zero-shot on planted data, kNN and OCC, text encoders."""
import numpy as np
import pytest
import torch

from probex_lib import aligned, text, zoo


def _planted(n_classes=30, per_class=4, dim=6, seed=0):
    """Layers (32, 24) = class text embedding (through a fixed map) + noise; a class's text is its vector."""
    g = torch.Generator().manual_seed(seed)
    T = torch.nn.functional.normalize(torch.randn(n_classes, dim, generator=g), dim=1)
    mix = torch.randn(dim, 32 * 24, generator=g)
    cls = np.repeat(np.arange(n_classes), per_class)
    x = (T[cls] @ mix).reshape(-1, 32, 24) + 0.3 * torch.randn(len(cls), 32, 24, generator=g)
    return [x], cls, T


def test_aligned_probex_learns_and_generalises_to_held_out_classes():
    xs, cls, T = _planted()
    held = [25, 26, 27, 28, 29]  # 25 training classes span the 6-d text space; 5 unseen ones
    rng = np.random.default_rng(0)
    train_idx = np.flatnonzero(~np.isin(cls, held))
    rng.shuffle(train_idx)
    tr, va = np.sort(train_idx[:80]), np.sort(train_idx[80:])
    ho = np.flatnonzero(np.isin(cls, held))
    sel = lambda idx: [x[idx] for x in xs]  # noqa: E731
    torch.manual_seed(0)  # the initialisation must not depend on what ran before in this process
    model = aligned.build("probex", sel(tr), T.shape[1], r_u=8, r_v=8, r_t=16)
    f = aligned.fit(model, sel(tr), cls[tr], T, sel(va), cls[va], list(range(25)), epochs=60)
    assert f.best_val > 0.7
    # the text space carries unseen classes: chance is 0.2; over init seeds 0-9 this gave 0.8-1.0
    assert aligned.top1(f.model, sel(ho), cls[ho], T, held) >= 0.7
    # random text vectors for the held-out classes break zero-shot: the score is not an artefact
    T_rand = T.clone()
    T_rand[held] = torch.nn.functional.normalize(torch.randn(5, T.shape[1], generator=torch.Generator().manual_seed(5)), dim=1)
    assert aligned.top1(f.model, sel(ho), cls[ho], T_rand, held) < aligned.top1(f.model, sel(ho), cls[ho], T, held)
    assert aligned.n_trainable(model) == sum(p.numel() for p in model.parameters())


def test_contrastive_loss_uses_the_classes_in_the_batch():
    T = torch.eye(4)
    emb = torch.eye(4)[[0, 2]]
    low = aligned.contrastive_loss(emb, torch.tensor([0, 2]), T, torch.tensor(np.log(50.0)))
    high = aligned.contrastive_loss(emb, torch.tensor([2, 0]), T, torch.tensor(np.log(50.0)))
    assert low < 0.01 and high > 10


def test_knn_and_occ_on_separated_and_on_random_representations():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(5), 6)
    centres = rng.standard_normal((5, 8)) * 5
    z = centres[labels] + rng.standard_normal((30, 8))
    assert aligned.knn_accuracy(z, labels, 3) == 1.0 and aligned.occ_auc(z, labels, 3) > 0.95
    noise = rng.standard_normal((30, 8))
    assert aligned.knn_accuracy(noise, labels, 3) < 0.6 and aligned.occ_auc(noise, labels, 3) < 0.75
    table = aligned.knn_occ_table({"good": z, "noise": noise}, labels, [1, 3])
    assert len(table) == 4 and set(table.columns) == {"representation", "k", "knn_acc", "occ_auc"}
    with pytest.raises(ValueError, match="class 9: OCC needs at least 2 models"):
        aligned.occ_auc(z[:7], np.r_[labels[:6], 9], 3)


def test_lora_deltas_are_b_times_a_and_mismatches_are_named(tmp_path):
    b, a = torch.randn(6, 2), torch.randn(2, 5)
    p1 = zoo.save_model(tmp_path / "one.safetensors", {"blk.to_k.lora.up.weight": b, "blk.to_k.lora.down.weight": a}, {})
    p2 = zoo.save_model(tmp_path / "two.safetensors", {"blk.to_k.lora.up.weight": torch.randn(6, 2),
                                                       "blk.to_k.lora.down.weight": torch.randn(2, 4)}, {})
    [x] = aligned.lora_deltas([str(p1)], ["blk.to_k"])
    torch.testing.assert_close(x[0], b @ a)
    with pytest.raises(zoo.ZooError, match=r"two\.safetensors: layer 'blk\.to_k' has B·A of shape \(6, 4\)"):
        aligned.lora_deltas([str(p1), str(p2)], ["blk.to_k"])
    with pytest.raises(zoo.ZooError, match=r"one\.safetensors: no LoRA layer 'blk\.to_q'"):
        aligned.lora_deltas([str(p1)], ["blk.to_q"])


def test_text_encoders():
    names = ["red star", "red circle", "blue star"]
    e = text.minilm(names)
    assert e.shape == (3, 384) and torch.allclose(e.norm(dim=1), torch.ones(3))
    assert float(e[0] @ e[1]) > float(text.random_vectors(names)[0] @ text.random_vectors(names)[1])
    bow = text.bag_of_words(names)
    assert bow.shape == (3, 4) and float(bow[0] @ bow[2]) == pytest.approx(0.5)
    torch.testing.assert_close(text.random_vectors(["a b"], seed=1), text.random_vectors(["a b"], seed=1))
    with pytest.raises(ValueError, match="unknown text encoder 'glove'"):
        text.embed("glove", names)
    with pytest.raises(ValueError, match="needs clip_name"):
        text.embed("clip", names)


def test_clip_text_path_with_a_tiny_random_clip(tmp_path):
    """The paper's CLIP text tower through from_pretrained, on a tiny random config saved locally."""
    import json

    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer

    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {t: i for i, t in enumerate([*letters, *(c + "</w>" for c in letters), "<|startoftext|>", "<|endoftext|>"])}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt")).save_pretrained(tmp_path)
    torch.manual_seed(0)
    cfg = CLIPTextConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, projection_dim=8, max_position_embeddings=64,
                         bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"])
    CLIPTextModelWithProjection(cfg).save_pretrained(tmp_path)
    e = text.embed("clip", ["red star", "blue circle"], clip_name=str(tmp_path))
    assert e.shape == (2, 8) and torch.allclose(e.norm(dim=1), torch.ones(2)) and not torch.allclose(e[0], e[1])


def test_checkpoints_record_their_format_and_older_ones_are_refused(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(4, 6, 5)
    model = aligned.build("probex", [x], 3, r_u=3, r_v=2, r_t=4)
    path = aligned.save_aligned(tmp_path / "ck.safetensors", model, ["blk.to_k"], {"text_encoder": "minilm"})
    meta = zoo.read_metadata(path)
    assert meta["format_version"] == aligned.FORMAT_VERSION == 2 and meta["probex_orientation"] == "official-v2"
    ck = aligned.read_aligned(path)
    torch.testing.assert_close(ck.model([x]), model([x]))
    assert ck.meta == {"text_encoder": "minilm"}
    # as an older kit wrote it: same tensors, no format version (its ProbeX was transposed)
    state = zoo.load_tensors(path)
    old = {k: v for k, v in meta.items() if k not in ("format_version", "probex_orientation")}
    zoo.save_model(tmp_path / "old.safetensors", state, old)
    with pytest.raises(zoo.ZooError, match=r"old\.safetensors: aligned checkpoint written by an older probex-kit "
                                           r"\(format version None\).*transposed layer.*retrain it"):
        aligned.read_aligned(tmp_path / "old.safetensors")
    zoo.save_model(tmp_path / "v1.safetensors", state, {**old, "format_version": 1})
    with pytest.raises(zoo.ZooError, match=r"v1\.safetensors: .*older probex-kit \(format version 1\)"):
        aligned.read_aligned(tmp_path / "v1.safetensors")
    zoo.save_model(tmp_path / "v9.safetensors", state, {**meta, "format_version": 9})
    with pytest.raises(zoo.ZooError, match=r"v9\.safetensors: .*format version 9.*reads version 2"):
        aligned.read_aligned(tmp_path / "v9.safetensors")
