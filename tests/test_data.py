import hashlib
import io
import tarfile

import numpy as np
import pytest

from probex_lib import data


def test_procedural_classes_are_named_colour_shape_pairs():
    assert len(data.PROCEDURAL_CLASSES) == 100 == len(set(data.PROCEDURAL_CLASSES))
    assert data.PROCEDURAL_CLASSES[0] == "red circle"
    assert "blue star" in data.PROCEDURAL_CLASSES


def test_procedural_is_deterministic_and_per_class_independent():
    full = data.make_procedural(3, "train", seed=7, classes=[4, 17, 93])
    again = data.make_procedural(3, "train", seed=7, classes=[4, 17, 93])
    alone = data.make_procedural(3, "train", seed=7, classes=[17])
    assert full.images.shape == (9, 32, 32, 3) and full.images.dtype == np.uint8
    np.testing.assert_array_equal(full.images, again.images)
    np.testing.assert_array_equal(full.images[3:6], alone.images)  # other classes do not shift class 17
    np.testing.assert_array_equal(full.labels, [4, 4, 4, 17, 17, 17, 93, 93, 93])
    test = data.make_procedural(3, "test", seed=7, classes=[4])
    assert not np.array_equal(test.images, full.images[:3])


def test_procedural_images_vary_within_a_class_and_colours_are_learnable():
    from sklearn.linear_model import LogisticRegression

    # five colours of one shape: colour should be easy; images of a class must still differ
    classes = [c * 10 + 3 for c in range(5)]  # red/orange/yellow/green/cyan stars
    tr = data.make_procedural(30, "train", seed=0, classes=classes)
    te = data.make_procedural(10, "test", seed=0, classes=classes)
    assert tr.images[:30].astype(float).std(axis=0).mean() > 20
    feats = lambda s: s.images.reshape(len(s), 8, 4, 8, 4, 3).mean(axis=(2, 4)).reshape(len(s), -1) / 255
    clf = LogisticRegression(max_iter=2000).fit(feats(tr), tr.labels)
    assert clf.score(feats(te), te.labels) > 0.8


def test_load_procedural_caches_compressed_arrays(kit_dirs):
    a = data.load_procedural(2, "test", seed=1)
    cache = kit_dirs[0] / "procedural" / "test_seed1_n2.npz"
    assert cache.exists()
    b = data.load_procedural(2, "test", seed=1)
    np.testing.assert_array_equal(a.images, b.images)
    assert not list(cache.parent.glob("*.tmp"))


def test_subset_and_class_ids():
    s = data.make_procedural(4, "train", classes=[1, 2, 3])
    sub = s.subset([2, 3], per_class=2)
    np.testing.assert_array_equal(sub.labels, [2, 2, 3, 3])
    np.testing.assert_array_equal(sub.images[0], s.images[4])
    np.testing.assert_array_equal(s.class_ids(["red square", "red triangle"]), [1, 2])
    with pytest.raises(data.DataError, match="not in dataset"):
        s.class_ids(["golden retriever"])


def test_unknown_source_and_split_are_errors():
    with pytest.raises(data.DataError, match="valid sources"):
        data.load_images("imagenet", "train", 1)
    with pytest.raises(data.DataError, match="valid splits"):
        data.make_procedural(1, "validation")


# --------------------------------------------------------------------------- CIFAR-100 fixture


def _cifar_records(labels, rng):
    images = rng.integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8)
    recs = [np.concatenate([[l // 5, l], img.transpose(2, 0, 1).ravel()]).astype(np.uint8) for l, img in zip(labels, images)]
    return np.concatenate(recs).tobytes(), images


def write_cifar_fixture(root, rng):
    """A tiny CIFAR-100 binary release: 6 train and 4 test records, 100 class names."""
    folder = root / "cifar-100-binary"
    folder.mkdir(parents=True)
    train_bytes, train_imgs = _cifar_records([0, 1, 99, 0, 1, 99], rng)
    test_bytes, _ = _cifar_records([5, 6, 7, 8], rng)
    (folder / "train.bin").write_bytes(train_bytes)
    (folder / "test.bin").write_bytes(test_bytes)
    (folder / "fine_label_names.txt").write_text("\n".join(["apple", "aquarium_fish"] + [f"class{i}" for i in range(2, 100)]) + "\n")
    return train_imgs


def test_cifar100_binary_reader(tmp_path):
    imgs = write_cifar_fixture(tmp_path, np.random.default_rng(0))
    train = data.load_cifar100("train", tmp_path)
    assert train.class_names[:2] == ("apple", "aquarium fish") and len(train.class_names) == 100
    np.testing.assert_array_equal(train.labels, [0, 1, 99, 0, 1, 99])
    np.testing.assert_array_equal(train.images, imgs)
    assert len(data.load_cifar100("test", tmp_path)) == 4
    np.testing.assert_array_equal(data.load_cifar100("train", tmp_path, n_per_class=1).labels, [0, 1, 99])
    same = data.load_images("cifar100", "train", 2, root=tmp_path)
    assert len(same) == 6


def test_cifar100_bad_files_are_named(tmp_path):
    write_cifar_fixture(tmp_path, np.random.default_rng(0))
    bad = tmp_path / "cifar-100-binary" / "train.bin"
    bad.write_bytes(bad.read_bytes()[:-7])
    with pytest.raises(data.DataError, match="train.bin.*not a whole number"):
        data.load_cifar100("train", tmp_path)
    with pytest.raises(data.DataError, match="fine_label_names.txt not found"):
        data.load_cifar100("train", tmp_path / "elsewhere")


def test_cifar100_download_from_file_url_checks_md5(tmp_path):
    src = tmp_path / "src"
    write_cifar_fixture(src, np.random.default_rng(1))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(src / "cifar-100-binary", arcname="cifar-100-binary")
    tarball = tmp_path / "cifar-100-binary.tar.gz"
    tarball.write_bytes(buf.getvalue())
    md5 = hashlib.md5(buf.getvalue()).hexdigest()
    with pytest.raises(data.DataError, match="md5"):
        data.download_cifar100(tmp_path / "bad", url=tarball.as_uri(), md5="0" * 32)
    folder = data.download_cifar100(tmp_path / "good", url=tarball.as_uri(), md5=md5)
    assert (folder / "train.bin").exists()
    assert len(data.load_cifar100("train", tmp_path / "good")) == 6
