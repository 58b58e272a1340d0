"""Image data: a procedural generator of 100 named classes, and real CIFAR-100.

Both sources return an :class:`ImageSet` with the same interface, so every experiment runs
unchanged on either (``profile.data_source``):

* ``procedural``: 10 colours x 10 shapes ("red star", "blue ring", ...) rendered at 32x32 with
  random position, scale, rotation, textured background, colour jitter and pixel noise.
  Deterministic: the images of one class depend only on (seed, split, class), so any subset
  of classes or images can be regenerated independently. Cached under ``data/procedural``.
* ``cifar100``: the official *binary* release of CIFAR-100 (``cifar-100-binary``), read
  without unpickling anything. The Python release that ``torchvision.datasets.CIFAR100``
  reads is a pickle, which the kit never loads from a file it did not write.
"""
from __future__ import annotations

import hashlib
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import atomic, paths

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "orange": (245, 135, 20),
    "yellow": (240, 215, 35),
    "green": (40, 165, 55),
    "cyan": (40, 200, 215),
    "blue": (35, 75, 225),
    "purple": (125, 45, 185),
    "pink": (245, 125, 185),
    "brown": (125, 75, 35),
    "white": (240, 240, 240),
}
SHAPES: tuple[str, ...] = (
    "circle", "square", "triangle", "star", "cross", "ring", "diamond", "hexagon", "crescent", "heart",
)
PROCEDURAL_CLASSES: tuple[str, ...] = tuple(f"{c} {s}" for c in COLOURS for s in SHAPES)
IMAGE_SIZE = 32
_SUPERSAMPLE = 2
_SPLIT_IDS = {"train": 0, "test": 1, "extra": 2}

CIFAR100_BINARY_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"
CIFAR100_BINARY_MD5 = "03b5dce01913d631647c71ecec9e9cb8"
_CIFAR_RECORD = 2 + 3 * 32 * 32


class DataError(ValueError):
    """Raised for missing or malformed data files; the message names the file."""


@dataclass(frozen=True)
class ImageSet:
    """A labelled image collection.

    images: (n, 32, 32, 3) uint8, RGB.
    labels: (n,) int64, indices into ``class_names``.
    class_names: all class names of the source (not only those present).
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    name: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, classes: np.ndarray | list[int], per_class: int | None = None) -> "ImageSet":
        """Images of ``classes`` only (labels keep their global ids), at most ``per_class`` each."""
        classes = np.asarray(classes, dtype=np.int64)
        keep = np.isin(self.labels, classes)
        idx = np.flatnonzero(keep)
        if per_class is not None:
            # first `per_class` images of each class, in stored order: deterministic
            order = np.argsort(self.labels[idx], kind="stable")
            idx = idx[order]
            rank = np.arange(idx.size) - np.searchsorted(self.labels[idx], self.labels[idx])
            idx = np.sort(idx[rank < per_class])
        return ImageSet(self.images[idx], self.labels[idx], self.class_names, self.name)

    def class_ids(self, names: list[str]) -> np.ndarray:
        """Global ids of class ``names``; unknown names are an error listing a few valid ones."""
        lookup = {n: i for i, n in enumerate(self.class_names)}
        missing = [n for n in names if n not in lookup]
        if missing:
            raise DataError(
                f"classes {missing} are not in dataset {self.name!r}; valid names include "
                f"{list(self.class_names[:5])} ... ({len(self.class_names)} classes)"
            )
        return np.array([lookup[n] for n in names], dtype=np.int64)


# --------------------------------------------------------------------------- procedural


def _class_rng(seed: int, split: str, cls: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_IDS[split], cls]))


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean mask of ``shape`` in shape coordinates; u, v: (n, h, w), unit size ~ radius 1."""
    r = np.hypot(u, v)
    phi = np.arctan2(v, u)
    if shape == "circle":
        return r < 0.9
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) < 0.72
    if shape in ("triangle", "hexagon"):
        k, radius = (3, 1.05) if shape == "triangle" else (6, 0.9)
        normals = np.linspace(0, 2 * np.pi, k, endpoint=False) + np.pi / k + np.pi / 2
        proj = np.max([u * np.cos(a) + v * np.sin(a) for a in normals], axis=0)
        return proj < radius * np.cos(np.pi / k)
    if shape == "star":
        frac = np.mod(phi * 5 / (2 * np.pi) + 0.25, 1.0)
        return r < 0.42 + 0.6 * np.abs(2 * frac - 1)
    if shape == "cross":
        return ((np.abs(u) < 0.27) & (np.abs(v) < 0.92)) | ((np.abs(v) < 0.27) & (np.abs(u) < 0.92))
    if shape == "ring":
        return (r < 0.92) & (r > 0.55)
    if shape == "diamond":
        return np.abs(u) / 0.55 + np.abs(v) / 1.0 < 1.0
    if shape == "crescent":
        return (r < 0.9) & (np.hypot(u - 0.45, v) > 0.72)
    if shape == "heart":
        x, y = 1.25 * u, -1.25 * v + 0.25
        return (x**2 + y**2 - 1) ** 3 - x**2 * y**3 < 0
    raise DataError(f"unknown shape {shape!r}; valid shapes: {SHAPES}")


def render_procedural(class_ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Render one image per entry of ``class_ids`` (ids into PROCEDURAL_CLASSES).

    class_ids: (n,) int. Returns (n, 32, 32, 3) uint8. All randomness comes from ``rng``.
    """
    class_ids = np.asarray(class_ids, dtype=np.int64)
    n, hi = class_ids.size, IMAGE_SIZE * _SUPERSAMPLE
    f32 = np.float32

    def uniform(lo: float, hi_: float, shape: tuple) -> np.ndarray:
        return rng.uniform(lo, hi_, shape).astype(f32)

    def normal(scale: float, shape: tuple) -> np.ndarray:
        return rng.normal(0, scale, shape).astype(f32)

    grid = ((np.arange(hi) + 0.5) / hi * 2 - 1).astype(f32)
    y, x = np.meshgrid(grid, grid, indexing="ij")
    x, y = x[None], y[None]

    cx, cy = uniform(-0.3, 0.3, (2, n, 1, 1))
    scale = uniform(0.38, 0.62, (n, 1, 1))
    theta = uniform(0, 2 * np.pi, (n, 1, 1))
    cos, sin = np.cos(theta), np.sin(theta)
    u = ((x - cx) * cos + (y - cy) * sin) / scale
    v = (-(x - cx) * sin + (y - cy) * cos) / scale

    mask = np.zeros((n, hi, hi), dtype=bool)
    shape_ids = class_ids % len(SHAPES)
    for s in np.unique(shape_ids):
        sel = shape_ids == s
        mask[sel] = _shape_mask(SHAPES[s], u[sel], v[sel])

    # textured background: two desaturated tones mixed by stripes and a smooth noise field
    tone = uniform(0.08, 0.5, (n, 2, 1, 1, 1)) * 255
    tint = normal(12, (n, 2, 1, 1, 3))
    bg_a, bg_b = tone[:, 0] + tint[:, 0], tone[:, 1] + tint[:, 1]
    ang = uniform(0, np.pi, (n, 1, 1))
    freq = uniform(2, 9, (n, 1, 1))
    phase = uniform(0, 2 * np.pi, (n, 1, 1))
    stripes = 0.5 + 0.5 * np.sin(freq * (x * np.cos(ang) + y * np.sin(ang)) * np.pi + phase)
    coarse = uniform(0, 1, (n, 4, 4))
    noise = np.repeat(np.repeat(coarse, hi // 4, axis=1), hi // 4, axis=2)
    mix = uniform(0, 1, (n, 1, 1))
    t = (mix * stripes + (1 - mix) * noise)[..., None]
    background = bg_a * (1 - t) + bg_b * t

    base = np.array(list(COLOURS.values()), dtype=f32)[class_ids // len(SHAPES)]
    fg = base * uniform(0.8, 1.08, (n, 1)) + normal(14, (n, 3))
    shade = 1 + 0.12 * (u * normal(1, (n, 1, 1)))  # mild lighting gradient
    fg_img = fg[:, None, None, :] * shade[..., None]

    img = np.where(mask[..., None], fg_img, background)
    img = img.reshape(n, IMAGE_SIZE, _SUPERSAMPLE, IMAGE_SIZE, _SUPERSAMPLE, 3).sum(axis=(2, 4)) / _SUPERSAMPLE**2
    img += normal(5, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def make_procedural(
    n_per_class: int, split: str = "train", seed: int = 0, classes: list[int] | None = None,
    batch: int = 250,
) -> ImageSet:
    """Generate ``n_per_class`` images of each class (all 100 unless ``classes`` is given).

    Images of class c depend only on (seed, split, c, n_per_class): adding classes never
    changes the images of others. Returns images (n_classes * n_per_class, 32, 32, 3).
    """
    if split not in _SPLIT_IDS:
        raise DataError(f"unknown split {split!r}; valid splits: {sorted(_SPLIT_IDS)}")
    classes = list(range(len(PROCEDURAL_CLASSES))) if classes is None else list(classes)
    images, labels = [], []
    for c in classes:
        rng = _class_rng(seed, split, c)
        for start in range(0, n_per_class, batch):
            k = min(batch, n_per_class - start)
            images.append(render_procedural(np.full(k, c), rng))
        labels.append(np.full(n_per_class, c, dtype=np.int64))
    return ImageSet(
        np.concatenate(images) if images else np.zeros((0, 32, 32, 3), np.uint8),
        np.concatenate(labels) if labels else np.zeros(0, np.int64),
        PROCEDURAL_CLASSES,
        "procedural",
    )


def load_procedural(n_per_class: int, split: str = "train", seed: int = 0, cache: bool = True) -> ImageSet:
    """All 100 procedural classes, ``n_per_class`` images each, cached as a compressed .npz."""
    path = paths.data_dir() / "procedural" / f"{split}_seed{seed}_n{n_per_class}.npz"
    if cache and path.exists():
        with np.load(path, allow_pickle=False) as z:
            return ImageSet(z["images"], z["labels"], PROCEDURAL_CLASSES, "procedural")
    data = make_procedural(n_per_class, split, seed)
    if cache:
        with atomic.atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, images=data.images, labels=data.labels)
    return data


# --------------------------------------------------------------------------- CIFAR-100


def _cifar_dir(root: Path) -> Path:
    return root / "cifar-100-binary"


def download_cifar100(root: str | Path | None = None, url: str = CIFAR100_BINARY_URL, md5: str | None = CIFAR100_BINARY_MD5) -> Path:
    """Fetch and unpack the CIFAR-100 binary release into ``root`` (default ``data/cifar100``).

    Only for a machine with internet access (the kit's profiles never call it implicitly).
    ``url`` may be a ``file://`` URL of a local tarball. The archive is checked against ``md5``.
    """
    root = Path(root) if root is not None else paths.data_dir() / "cifar100"
    tarball = root / "cifar-100-binary.tar.gz"
    if not tarball.exists():
        with atomic.atomic_path(tarball) as tmp, urllib.request.urlopen(url) as resp, open(tmp, "wb") as fh:
            while chunk := resp.read(1 << 20):
                fh.write(chunk)
    if md5 is not None:
        digest = hashlib.md5(tarball.read_bytes()).hexdigest()
        if digest != md5:
            raise DataError(f"{tarball}: md5 {digest} does not match the expected {md5}")
    with tarfile.open(tarball, "r:gz") as tar:
        tar.extractall(root, filter="data")
    return _cifar_dir(root)


def _read_cifar_bin(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.exists():
        raise DataError(
            f"{path} not found: put the CIFAR-100 binary release (cifar-100-binary.tar.gz, "
            f"unpacked) under {path.parent.parent}, or call probex_lib.data.download_cifar100()"
        )
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % _CIFAR_RECORD:
        raise DataError(f"{path}: size {raw.size} bytes is not a whole number of {_CIFAR_RECORD}-byte CIFAR-100 records")
    rec = raw.reshape(-1, _CIFAR_RECORD)
    labels = rec[:, 1].astype(np.int64)
    if labels.max() >= 100:
        raise DataError(f"{path}: fine label {labels.max()} out of range 0..99")
    images = rec[:, 2:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def load_cifar100(split: str = "train", root: str | Path | None = None, n_per_class: int | None = None) -> ImageSet:
    """CIFAR-100 (fine labels) from the binary release under ``root`` (default ``data/cifar100``)."""
    root = Path(root) if root is not None else paths.data_dir() / "cifar100"
    if split not in ("train", "test"):
        raise DataError(f"unknown CIFAR-100 split {split!r}; valid splits: ['test', 'train']")
    folder = _cifar_dir(root)
    if not folder.exists() and (root / "cifar-100-binary.tar.gz").exists():
        download_cifar100(root, md5=None)
    names_file = folder / "fine_label_names.txt"
    if not names_file.exists():
        raise DataError(f"{names_file} not found: the CIFAR-100 binary release is missing or incomplete under {root}")
    names = tuple(n.strip().replace("_", " ") for n in names_file.read_text().splitlines() if n.strip())
    if len(names) != 100:
        raise DataError(f"{names_file}: expected 100 class names, found {len(names)}")
    images, labels = _read_cifar_bin(folder / f"{split}.bin")
    data = ImageSet(images, labels, names, "cifar100")
    return data.subset(np.arange(100), per_class=n_per_class) if n_per_class is not None else data


def load_images(source: str, split: str, n_per_class: int, seed: int = 0, root: str | Path | None = None) -> ImageSet:
    """Dispatch on ``source`` ("procedural" or "cifar100"); same interface for both."""
    if source == "procedural":
        return load_procedural(n_per_class, split, seed)
    if source == "cifar100":
        return load_cifar100(split, root, n_per_class)
    raise DataError(f"unknown data source {source!r}; valid sources: ['cifar100', 'procedural']")
