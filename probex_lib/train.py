"""Training one small image classifier (ResNet9) from a JSON-serialisable spec.

:func:`train_resnet9` is the ``train_fn`` that :func:`probex_lib.zoo.generate_zoo` ships to
workers. It is deterministic given its parameters (seeded torch generator, one thread), and
it loads its images itself (cached per process), so tasks carry only a small dict.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import data, zoo
from .nets import ResNet9, count_parameters


@functools.lru_cache(maxsize=4)
def _cached_images(source: str, split: str, n_per_class: int, seed: int) -> data.ImageSet:
    return data.load_images(source, split, n_per_class, seed)


def model_data(p: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    """One model's data: ``images_per_class`` training images of each class in ``p["classes"]``,
    drawn with the model's seed, and all test images of those classes.

    Returns x (n, 3, 32, 32), y (n,) local labels 0..k-1, x_test, y_test, class names.
    """
    classes = np.asarray(p["classes"], dtype=np.int64)
    d = p["data"]
    train = _cached_images(d["source"], "train", d["n_train"], d["seed"])
    test = _cached_images(d["source"], "test", d["n_test"], d["seed"])
    rng = np.random.default_rng(int(p["seed"]))
    idx = np.concatenate([
        rng.choice(np.flatnonzero(train.labels == c), size=p["images_per_class"], replace=False) for c in classes
    ])
    local = {int(c): i for i, c in enumerate(classes)}
    test_sub = test.subset(classes)
    return (to_input(train.images[idx]), torch.tensor([local[int(c)] for c in train.labels[idx]]),
            to_input(test_sub.images), torch.tensor([local[int(c)] for c in test_sub.labels]),
            [train.class_names[c] for c in classes])


def default_device() -> torch.device:
    """CUDA when present, else CPU: GPU use is automatic, the CPU is the design target."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def to_input(images: np.ndarray) -> torch.Tensor:
    """uint8 (n, 32, 32, 3) -> float (n, 3, 32, 32), roughly zero-mean unit-scale, channels_last."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return ((x - 128.0) / 64.0).contiguous(memory_format=torch.channels_last)


def lr_at(step: int, total: int, lr: float, warmup_frac: float) -> float:
    """Learning rate at ``step`` of ``total``: linear warm-up over ``warmup_frac``, then linear decay to 0."""
    warm = max(1, int(total * warmup_frac))
    return lr * min(1.0, (step + 1) / warm) * max(0.0, 1 - step / total)


def random_hflip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Flip each image of x: (batch, 3, h, w) left-right with probability 1/2 (seeded by ``g``)."""
    flip = (torch.rand(len(x), generator=g) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def optimiser_step(opt: torch.optim.Optimizer, loss: torch.Tensor, lr: float) -> None:
    """Set the learning rate of every group, then one backward pass and update."""
    for group in opt.param_groups:
        group["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500,
             forward: Callable[[torch.Tensor], torch.Tensor] | None = None) -> float:
    """Top-1 accuracy of ``model`` on x: (n, 3, 32, 32), y: (n,) local labels.

    ``forward`` maps a batch to logits (default: ``model`` itself)."""
    forward = forward or model
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            correct += int((forward(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    model.train()
    return correct / max(1, len(y))


def load_init(model: ResNet9, init: str) -> None:
    """Load a root checkpoint into ``model``; a missing layer or shape mismatch names the file."""
    zoo.load_checked(model, zoo.load_tensors(init), init)


def train_resnet9(p: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train a ResNet9 on the classes ``p["classes"]`` (global class ids) and test it.

    Keys of ``p``: width, classes, data (source, seed, n_train, n_test), images_per_class,
    epochs, batch_size, lr, weight_decay, momentum, warmup, seed, init ("random" or the path
    of a checkpoint to fine-tune). Returns (state dict, metadata with test_accuracy).
    """
    g = torch.Generator().manual_seed(int(p["seed"]))
    torch.manual_seed(int(p["seed"]))
    classes = np.asarray(p["classes"], dtype=np.int64)
    x, y, xt, yt, class_names = model_data(p)

    model = ResNet9(p["width"], len(classes)).to(memory_format=torch.channels_last)
    if p["init"] != "random":
        load_init(model, p["init"])
    dev = default_device()
    model, x, y, xt, yt = model.to(dev), x.to(dev), y.to(dev), xt.to(dev), yt.to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=p["lr"], momentum=p["momentum"], nesterov=True,
                          weight_decay=p["weight_decay"])
    bs = p["batch_size"]
    steps_per_epoch = max(1, len(y) // bs)
    total = steps_per_epoch * p["epochs"]
    step, loss = 0, torch.tensor(float("nan"))
    for _ in range(p["epochs"]):
        perm = torch.randperm(len(y), generator=g)
        for b in range(steps_per_epoch):
            sel = perm[b * bs:(b + 1) * bs]
            xb = random_hflip(x[sel], g)
            loss = F.cross_entropy(model(xb), y[sel])
            optimiser_step(opt, loss, lr_at(step, total, p["lr"], p["warmup"]))
            step += 1
    if not torch.isfinite(loss):
        raise FloatingPointError(f"training diverged (loss {float(loss)}) for spec seed {p['seed']}, lr {p['lr']}")
    state = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    meta = {
        **p,
        "class_names": class_names,
        "architecture": f"ResNet9(width={p['width']})",
        "n_parameters": count_parameters(state),
        "train_loss": loss.item(),
        "test_accuracy": evaluate(model, xt, yt),
    }
    return state, meta
