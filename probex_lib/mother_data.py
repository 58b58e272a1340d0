"""Loading the MoTHer dataset (:mod:`probex_lib.mother_zoo`) for the experiments.

Shapes: a :class:`Weights` holds, for ``n`` models, each backbone tensor stacked as (n, ...);
``parent`` arrays index into the same order (-1 for a root).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import zoo
from .mother_zoo import layer_groups

LORA_SUBSETS = ("LoRA-V", "LoRA-F")


@dataclass
class Weights:
    """Backbone tensors of ``ids`` (stacked (n, ...) float32), the true parent index of each
    model (-1 for a root or a parent outside the set), its tree and depth."""

    ids: list[str]
    tensors: dict[str, np.ndarray]
    parent: np.ndarray
    tree: np.ndarray
    depth: np.ndarray

    def group(self, name: str) -> list[np.ndarray]:
        keys = layer_groups(list(self.tensors))[name]
        if not keys:
            raise KeyError(f"no layer of group {name!r} in these models (layers: {list(self.tensors)[:4]} ...)")
        return [self.tensors[k] for k in keys]

    def with_tensors(self, tensors: dict[str, np.ndarray]) -> "Weights":
        return Weights(self.ids, tensors, self.parent, self.tree, self.depth)


def members(man: pd.DataFrame, subset: str, roots: Sequence[str] | None = None) -> pd.DataFrame:
    """The models of ``subset`` and the roots of its trees (or the given ``roots``), roots first."""
    sub = man[man["subset"] == subset]
    if sub.empty:
        raise KeyError(f"no models of subset {subset!r}; subsets here: {sorted(man['subset'].unique())}")
    roots = sorted(set(sub["tree"])) if roots is None else list(roots)
    return pd.concat([man[man["model_id"].isin(roots)].sort_values("model_id"), sub], ignore_index=True)


def load(rows: pd.DataFrame, group: str = "all") -> Weights:
    """Read the ``group`` tensors (see :func:`layer_groups`) of every model in ``rows``."""
    keys = layer_groups(zoo.tensor_names(rows["path"].iloc[0]))[group]
    paths = rows["path"].tolist()
    tensors = {k: zoo.load_layer(paths, k).numpy() for k in keys}
    ids = rows["model_id"].tolist()
    index = {m: i for i, m in enumerate(ids)}
    parent = np.array([index.get(p, -1) if isinstance(p, str) else -1 for p in rows["parent"]])
    return Weights(ids, tensors, parent, rows["tree"].to_numpy(), rows["depth"].to_numpy().astype(int))


def traces(man: pd.DataFrame, models: Sequence[str], group: str = "attention") -> pd.DataFrame:
    """Long table of the recorded kurtosis traces (Figs. 2, 16): model_id, step, progress, kurtosis."""
    rows = []
    for _, r in man[man["model_id"].isin(models)].iterrows():
        steps, vals = r.get("trace_step"), r.get(f"trace_{group}")
        if not isinstance(steps, list):
            raise KeyError(f"{r['path']}: no kurtosis trace recorded (trace_every was 0)")
        for s, v in zip(steps, vals):
            rows.append({"model_id": r["model_id"], "mode": r["mode"], "lr": r["lr"], "step": s,
                         "progress": s / max(steps[-1], 1), "kurtosis": v})
    return pd.DataFrame(rows)
