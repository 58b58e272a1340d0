"""Every number of every experiment, per profile, in one place.

Profiles differ only in numbers and in where data and models come from:

* ``smoke``: CI; seconds to a few minutes per notebook; checks that the code path runs.
* ``default``: ``./run_all.sh``; offline, 2 CPU cores; a scaled-down, faithful reproduction.
* ``paper``: the papers' scale (real CIFAR-100, 500 models per population, GPUs, Dask).
* ``scaling``: notebook 08's larger points (``./run_all.sh --profile scaling --only 08``); every
  other section is the ``default`` one, so the curves extend the default zoos.

A notebook asks for its section with :func:`get_config` and may override any field by name;
an unknown profile, section or field is an error listing the valid ones.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

PROFILES = ("smoke", "default", "paper", "scaling")


class ProfileError(ValueError):
    """Unknown profile, section or override."""


@dataclass(frozen=True)
class DataConfig:
    """Where images come from and how many per class are generated (procedural) or kept (CIFAR)."""

    source: str = "procedural"  # procedural | cifar100
    seed: int = 0
    n_train: int = 300  # images per class in the training pool
    n_test: int = 20  # images per class for testing the trained models


@dataclass(frozen=True)
class MotivationConfig:
    """ProbeX paper, Section 3 (Fig. 3 a-d): Model Tree (T) vs Model Forest (F) populations."""

    data: DataConfig = field(default_factory=DataConfig)
    n_classes_a: int = 50  # dataset A: the classes the populations are trained on
    n_classes_b: int = 25  # dataset B: pre-training classes of the tree roots
    classes_per_model: int = 25  # each model: this many random classes of A
    width: int = 8  # ResNet9 width multiplier (8 -> 105k parameters; the paper's ResNet9: 64)
    n_trees: int = 4  # roots pre-trained on B (T1..T4), each with its own seed
    models_t1: int = 140  # models in T1 (= the paper's T); also the size for experiments a, b
    models_other_trees: int = 50  # models in each of T2..T4 (experiments c, d)
    models_forest: int = 140  # models in F (random init)
    root_images_per_class: int = 300
    root_epochs: int = 1  # the paper pre-trains on B for a single epoch
    root_lr: float = 0.1
    images_per_class: int = 30  # fine-tuning images per class (sampled per model from the pool)
    epochs: int = 4
    lr: float = 0.05
    batch_size: int = 64
    weight_decay: float = 5e-4
    momentum: float = 0.9
    warmup: float = 0.1  # fraction of steps with a linear learning-rate warm-up
    layer: str = "layer3.res2.conv.weight"  # the layer the linear metanetwork reads (last conv)
    split: tuple[float, float, float] = (0.7, 0.1, 0.2)  # train / val / test fractions per population
    size_grid: tuple[int, ...] = (10, 25, 50, 98)  # training-set sizes for Fig. 3b
    size_repeats: int = 5  # random subsets per size (error bars)
    seed: int = 0


VIT_SIZE = {"image_size": 32, "patch_size": 8, "hidden_size": 64, "layers": 4, "heads": 4, "mlp": 256}
RESNET_SIZE = {"embedding": 16, "hidden_sizes": [16, 32, 64, 128], "depths": [1, 1, 1, 1]}
UNET_SIZE = {"image_size": 16, "widths": [32, 32, 32], "head_dim": 8, "cross_dim": 384, "groups": 8}


@dataclass(frozen=True)
class ModelJConfig:
    """ProbeX paper, Section 5 and Appendix G: the Model Jungle, discriminative and generative.

    Discriminative: four roots (``roots``: supervised ViT, a second supervised ViT from other
    data and seed standing in for DINO, MAE, ResNet), each fine-tuned ``models_per_tree`` times
    on ``classes_per_model`` random classes with hyperparameters drawn from the ``ft_*`` grids.
    Generative: a diffusion UNet pre-trained, then continued on more data (two levels), then
    personalised by LoRAs; ``variants`` are (name, n_classes, n_held_out, models_per_class).
    """

    data: DataConfig = field(default_factory=lambda: DataConfig(n_train=40, n_test=20))
    pretrain_data: DataConfig = field(default_factory=lambda: DataConfig(seed=1, n_train=100, n_test=10))
    continue_data: DataConfig = field(default_factory=lambda: DataConfig(seed=2, n_train=150, n_test=10))
    # paper: hub names per root; empty -> pre-train the root inside the kit
    hub: dict = field(default_factory=dict)
    classes: tuple[str, ...] = ()  # class names the zoo uses; empty: every class of the source
    vit_size: dict = field(default_factory=lambda: dict(VIT_SIZE))
    mae_size: dict = field(default_factory=lambda: {**VIT_SIZE, "decoder_hidden": 32, "decoder_layers": 1, "decoder_mlp": 64})
    resnet_size: dict = field(default_factory=lambda: dict(RESNET_SIZE))
    root_images_per_class: int = 100
    root_epochs: int = 10
    root_lr: float = 2e-3
    root_batch_size: int = 128
    models_per_tree: int = 150
    classes_per_model: int = 50
    # The grid is stronger than the first kit zoo's (lr 1e-4..3e-3, 2-4 epochs, 10-30 images,
    # random head): those fine-tunes reached 0.27 accuracy and a linear probe read their classes
    # at chance. A pilot of 60 SupViT fine-tunes with a linear-probed head (LP-FT) at lr 3e-3,
    # 4 epochs, 30 images gave 0.40 accuracy and a 0.59 ridge probe (notebook 02's notes).
    ft_lrs: tuple[float, ...] = (1e-3, 2e-3, 3e-3)
    ft_epochs: tuple[int, ...] = (3, 4, 5)
    ft_batch_sizes: tuple[int, ...] = (32, 64)
    ft_images_per_class: tuple[int, ...] = (20, 30)
    ft_weight_decays: tuple[float, ...] = (0.0, 0.01, 0.05)
    ft_head_init: str = "probe"  # "probe": linear-probe the new head first (LP-FT); "random": a fresh head
    split: tuple[float, float, float] = (0.7, 0.1, 0.2)
    unet_size: dict = field(default_factory=lambda: dict(UNET_SIZE))
    text_tokens: int = 10
    unet_pretrain_steps: int = 400
    unet_continue_steps: int = 200
    unet_batch_size: int = 64
    unet_lr: float = 2e-3
    cond_dropout: float = 0.1
    lora_rank: int = 4
    lora_steps: tuple[int, ...] = (30, 40, 50)
    lora_lrs: tuple[float, ...] = (3e-3, 5e-3, 8e-3)
    lora_images: tuple[int, int] = (5, 10)
    variants: tuple = (("fine", 50, 10, 4), ("low", 100, 20, 2))
    seed: int = 0


@dataclass(frozen=True)
class ProbeXConfig:
    """ProbeX paper, Section 6.1 (Table 1), Appendix C (router) and Appendix E (ablations).

    The paper's ranks are 128 at ViT-B width 768; our layers are 12x narrower, so the default
    ranks are 32 (still over 20x fewer parameters than the Dense expert). ``sweep_filter``
    keeps the layers whose name contains one of its strings (empty: every layer, as the paper).
    """

    epochs: int = 200  # paper: 500
    r_u: int = 32
    r_v: int = 32
    r_t: int = 32
    batch_size: int = 64
    sweep_filter: tuple[str, ...] = ("o_proj", "fc1", "fc2", "convolution")
    trees: tuple[str, ...] = ()  # empty: every tree of the zoo
    statnn_iter: int = 100  # boosting rounds per label
    router_layer: str = ""  # empty: each architecture's first swept layer
    ablation_tree: str = "SupViT"  # the paper's ablations use the Sup. ViT tree
    ablation_epochs: int = 150
    rank_grid: tuple[int, ...] = (8, 32, 128)
    depth_grid: tuple[int, ...] = (1, 2, 3)
    n_train_grid: tuple[int, ...] = (10, 25, 50, 0)  # 0: every training model
    seed: int = 0



@dataclass(frozen=True)
class AlignedConfig:
    """ProbeX paper, Sec. 6.2, Sec. 7 and App. E.4: text-aligned ProbeX on the generative split.

    ``variants``: the generative variants of notebook 02 to evaluate (the first is the one of
    the ablations, the paper's SD200). r_U and r_V are capped by our LoRA layers' narrow side
    (32); r_T is the paper's 128. ``layer_filter`` keeps the LoRA layers whose name contains
    one of its strings (empty: every adapted layer, as the paper's sweep).
    """

    variants: tuple[str, ...] = ("fine", "low")
    text_encoder: str = "minilm"
    encoder_ablation: tuple[str, ...] = ("minilm", "unet", "bow", "random")
    clip_name: str = ""  # hub name or local folder of a CLIP model (the paper profile's text encoder)
    epochs: int = 150  # paper: 500
    lr: float = 1e-3
    weight_decay: float = 1e-5
    batch_size: int = 64
    r_u: int = 32
    r_v: int = 32
    r_t: int = 128
    layer_filter: tuple[str, ...] = ()
    ks: tuple[int, ...] = (1, 2, 3)  # neighbours for kNN and OCC (Table 3)
    repeats: int = 5  # seeds per setting of Tables 2, 4 and 6 (the layer sweep uses one)
    n_queries: int = 4  # retrieval figure: seeded query models of held-out classes
    n_retrieved: int = 4
    seed: int = 0


@dataclass(frozen=True)
class MotherConfig:
    """MoTHer paper, Sec. 5-6 and App. B: the Model Graph dataset and its analysis.

    ``n_roots`` unrelated ViT roots (same architecture; each pre-trained from its own seed on its
    own images) each grow a tree of ``children`` children per node over ``levels`` levels
    (1 + 4 + 16 = 21 models per tree, the paper's layout), once per subset: FT (full fine-tuning),
    LoRA-V (rank drawn from ``lora_ranks``), LoRA-F (rank ``lora_rank_fixed``) and Mixed (each
    node FT or LoRA-V at random). A child learns a different task (its own ``classes_per_task``
    classes) than its parent. Deep: one root, ``deep_children`` children per node over
    ``deep_levels`` levels. ResNet: one tree of the ResNet root. Chain: a root continued
    pre-training ``chain_stages`` times on more data (generalisation, the SD 1.1-1.5 case).
    Our ViT is 64 wide, so the paper's LoRA ranks 8-64 and 16 at width 768 become 2-16 and 4.
    """

    data: DataConfig = field(default_factory=lambda: DataConfig(seed=20, n_train=60, n_test=20))
    pretrain_images_per_class: int = 60  # each root: its own procedural draw (data seed 100 + root)
    vit_size: dict = field(default_factory=lambda: {**VIT_SIZE})
    resnet_size: dict = field(default_factory=lambda: dict(RESNET_SIZE))
    # paper: the five hub ViT-B roots of App. B (from_pretrained, stored untrained here)
    hub: tuple[str, ...] = ()
    n_roots: int = 5
    children: int = 4
    levels: int = 2
    subsets: tuple[str, ...] = ("FT", "LoRA-V", "LoRA-F", "Mixed")
    deep_children: int = 3
    deep_levels: int = 3  # paper: 4 levels below the root (121 models)
    resnet_trees: int = 1
    chain_stages: int = 4
    merge_roots: int = 3  # App. E / Table 6: these roots and their pairwise uniform averages ...
    merge_children: int = 5  # ... each fine-tuned this many times
    root_steps: int = 600  # AdamW steps of pre-training (kurtosis dips early and recovers after ~300)
    root_lr: float = 1e-3
    root_batch_size: int = 128
    classes_per_task: int = 10
    ft_lrs: tuple[float, ...] = (1e-4, 3e-4, 1e-3)
    ft_epochs: tuple[int, ...] = (2, 3)
    ft_images_per_class: tuple[int, ...] = (30, 60)
    ft_batch_sizes: tuple[int, ...] = (32, 64)
    ft_weight_decays: tuple[float, ...] = (0.0, 0.01)
    lora_ranks: tuple[int, ...] = (2, 4, 8, 16)
    lora_rank_fixed: int = 4
    lora_lrs: tuple[float, ...] = (1e-3, 3e-3)
    lora_targets: tuple[str, ...] = ("q_proj", "v_proj")
    trace_every: int = 20  # steps between kurtosis records during training (Figs. 2 and 16)
    c: float = 0.3  # Eq. 6
    c_grid: tuple[float, ...] = (0.0, 0.1, 0.3, 1.0, 3.0)
    prune_amounts: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99)
    quant_repeats: int = 10
    size_grid: tuple[int, ...] = (10, 21, 42, 63, 84, 105)  # Fig. 6
    timing_sizes: tuple[int, ...] = (100, 300, 1000)  # Table 7: simulated models
    timing_dim: int = 768  # Table 7: each simulated model is one timing_dim x timing_dim layer (the paper: 768)
    seed: int = 0


@dataclass(frozen=True)
class LineageConfig:
    """Notebook 09. The held-out MoTHer dataset differs from notebook 06's (the calibration set) in its
    seed, so its roots, tasks and hyperparameter draws are new; it keeps 06's model sizes."""

    heldout_seed: int = 2  # 1 until the first held-out run, which changed the method (see lineage_exp); 2 is untouched
    heldout_roots: int = 3
    subsets: tuple[str, ...] = ("FT", "LoRA-V")  # the calibration view takes these too, plus its own LoRA-F / Mixed
    calibration_subsets: tuple[str, ...] = ("FT", "LoRA-V", "LoRA-F", "Mixed")
    merge_roots: int = 2
    merge_children: int = 2
    artefacts: tuple[str, ...] = ("fp16", "int8", "int4c", "prune30", "prune60", "merge2", "merge3")  # one of each per tree (lineage_data)
    score_layers: str = r"attention\.(q|k|v|o)_proj"  # MoTHer's square attention matrices (06's choice for LoRA)
    null_pairs: int = 400  # unrelated pairs (different trees of the calibration view) forming the pairwise test's null
    max_pairs: int = 4000  # pairs per kind scored in the pairwise evaluation (a random subset beyond)
    seed: int = 0


@dataclass(frozen=True)
class ScalingConfig:
    """Notebook 08: each headline claim's effect along the scale axis on which our setting differs
    most from the paper's. Every other setting is the ``default`` profile's (``smoke`` in smoke).

    ``root_steps``: AdamW steps of MoTHer root pre-training (M-T1 FT, M-F1, M-F2, M-F7), each
    value a separate run with the kit's schedule (warm-up, linear decay to its own end), on
    ``mother_roots`` roots with an FT tree each and the chain of root 0; the value equal to
    notebook 06's reuses its models. ``lr_spreads``: max / min of the FT learning rates of those
    trees at notebook 06's step count (M-T1 FT, M-F1), log-symmetric about the kit's set; the
    paper's set spans 45x. ``tree_models``: models in each of T1..T4 and F (P-F3a,
    P-F3c), one shared zoo with notebook 01. ``resnet_widths``: the ResNet9 width multiplier
    (P-F3a) at ``width_models`` models per population (empty: not run). ``probex_models``: training
    models per Model-J tree for ProbeX, Dense and StatNN (P-T1), subsets of notebook 02's zoo.
    ``lora_models``: LoRAs per class of the first generative variant (P-T2, P-T3), one folder
    shared by every value, each LoRA the same run as notebook 02's LoRA of its class and index.
    ``lora_ranks``, ``lora_steps`` (the largest of the personalisation-step grid, the grid scaled
    with it) and ``lora_classes`` (training classes of that variant, the first n of a seeded order;
    held-out classes unchanged): P-T2, P-T3 at ``lora_axes_k`` LoRAs per class (default and scaling:
    2, below notebook 02's 4, to fit the budget; at the default rank and steps the point is
    lora_models' point of that k; where it equals notebook 02's, the points at notebook 02's setting
    are marked default, with the nested split, not notebook 02's).
    ``vit_widths``: hidden width of the ViT of Model-J's SupViT tree (root and fine-tunes retrained
    with notebook 02's specs and seeds; MLP scaled with it) for P-T1 on that tree (empty: not run).
    """

    axes: tuple[str, ...] = ("root_steps", "lr_spread", "tree_models", "resnet_width", "probex_models", "lora_models",
                             "lora_rank", "lora_steps", "lora_classes", "vit_width")
    root_steps: tuple[int, ...] = (150, 300, 600)  # scaling adds 1200, 2400
    mother_roots: int = 3
    lr_spreads: tuple[int, ...] = (1, 3, 10, 45)  # max / min of the FT learning rates (M-T1, M-F1); kit 10, paper 45
    tree_models: tuple[int, ...] = (35, 70, 140)
    resnet_widths: tuple[int, ...] = ()
    width_models: int = 70
    probex_models: tuple[int, ...] = (25, 50, 105)  # training models per Model-J tree (P-T1); 105 = all of notebook 02's
    lora_models: tuple[int, ...] = (2, 3, 4)  # LoRAs per class of the first generative variant (P-T2, P-T3); kit 4, paper SD200: 25
    lora_ranks: tuple[int, ...] = (1, 4, 16)  # the paper states no rank
    lora_steps: tuple[int, ...] = (12, 25, 50)  # largest step of the grid (kit 30/40/50); the paper states none
    lora_classes: tuple[int, ...] = (10, 20, 40)  # training classes; paper SD200: 170
    lora_axes_k: int = 2  # LoRAs per class on the rank, steps and classes axes
    vit_widths: tuple[int, ...] = ()  # hidden width of the SupViT tree (P-T1); kit 64, paper ViT-B 768; scaling profile only
    seed: int = 0


_SECTIONS: dict[str, dict[str, Any]] = {
    "scaling": {
        "smoke": ScalingConfig(root_steps=(10, 20, 40), lr_spreads=(1, 10, 45), mother_roots=2, tree_models=(10, 12, 20),
                               resnet_widths=(2, 4, 6),
                               width_models=10, probex_models=(3, 5, 7), lora_models=(3, 4, 5), lora_ranks=(1, 4, 8),
                               lora_steps=(2, 3, 6), lora_classes=(2, 3, 4), lora_axes_k=5, vit_widths=(8, 16, 24)),
        "default": ScalingConfig(),
        "paper": ScalingConfig(root_steps=(1000, 3000, 10000), mother_roots=5, tree_models=(100, 200, 350, 500),
                               resnet_widths=(16, 32, 64), width_models=350, probex_models=(50, 100, 200, 350),
                               lora_models=(5, 10, 25), lora_axes_k=4),
        "scaling": ScalingConfig(root_steps=(150, 300, 600, 1200, 2400), tree_models=(35, 70, 140, 280),
                                 resnet_widths=(4, 8, 16), lora_models=(2, 3, 4, 8, 16), lora_ranks=(1, 4, 16, 32),
                                 lora_steps=(12, 25, 50, 100, 200), vit_widths=(32, 64, 128)),
    },
    "motivation": {
        "smoke": MotivationConfig(
            data=DataConfig(n_train=40, n_test=10), n_classes_a=10, n_classes_b=5, classes_per_model=5,
            width=4, models_t1=12, models_other_trees=10, models_forest=12, root_images_per_class=40,
            images_per_class=10, epochs=1, size_grid=(4, 8), size_repeats=2,
        ),
        "default": MotivationConfig(),
        "paper": MotivationConfig(
            data=DataConfig(source="cifar100", n_train=500, n_test=100), width=64, models_t1=500,
            models_other_trees=350, models_forest=500, root_images_per_class=500, images_per_class=500,
            epochs=10, size_grid=(25, 50, 100, 200, 350), size_repeats=5,
        ),
    },
    "modelj": {
        "smoke": ModelJConfig(
            data=DataConfig(n_train=12, n_test=5), pretrain_data=DataConfig(seed=1, n_train=10, n_test=5),
            classes=tuple(f"{c} {s}" for c in ("red", "green", "blue") for s in ("circle", "square", "star")),
            continue_data=DataConfig(seed=2, n_train=12, n_test=5),
            vit_size={**VIT_SIZE, "hidden_size": 16, "layers": 1, "heads": 2, "mlp": 32},
            mae_size={**VIT_SIZE, "hidden_size": 16, "layers": 1, "heads": 2, "mlp": 32, "decoder_hidden": 8,
                      "decoder_layers": 1, "decoder_mlp": 16},
            resnet_size={"embedding": 8, "hidden_sizes": [8, 16], "depths": [1, 1]},
            root_images_per_class=5, root_epochs=1, models_per_tree=10, classes_per_model=5, ft_epochs=(1,),
            ft_images_per_class=(4, 6), unet_size={**UNET_SIZE, "widths": [16, 16, 16]}, unet_pretrain_steps=4,
            unet_continue_steps=2, unet_batch_size=16, lora_steps=(2, 3), lora_images=(3, 5),
            variants=(("fine", 6, 2, 2), ("low", 9, 3, 1)),
        ),
        "default": ModelJConfig(),
        "paper": ModelJConfig(
            data=DataConfig(source="cifar100", n_train=500, n_test=100),
            hub={"SupViT": "google/vit-base-patch16-224", "DINO": "facebook/dino-vitb16",
                 "MAE": "facebook/vit-mae-base", "ResNet": "microsoft/resnet-101"},
            models_per_tree=500, ft_images_per_class=(100, 250, 500), ft_epochs=(2, 3, 4, 5),
            ft_lrs=(1e-4, 3e-4, 1e-3, 3e-3), ft_head_init="random",  # Model-J: new heads, hub-scale roots
        ),
    },
    "probex": {
        "smoke": ProbeXConfig(epochs=8, r_u=8, r_v=8, r_t=8, sweep_filter=("layers.0.mlp.fc2", "stages.0"),
                              statnn_iter=5, ablation_epochs=4, rank_grid=(4, 8), depth_grid=(1, 2),
                              n_train_grid=(2, 0)),
        "default": ProbeXConfig(),
        "paper": ProbeXConfig(epochs=500, r_u=128, r_v=128, r_t=128, sweep_filter=(), ablation_epochs=500,
                              rank_grid=(16, 32, 64, 128, 256, 512), n_train_grid=(25, 50, 100, 200, 0)),
    },
    "mother": {
        "smoke": MotherConfig(
            data=DataConfig(seed=20, n_train=12, n_test=5), pretrain_images_per_class=8,
            vit_size={**VIT_SIZE, "hidden_size": 16, "layers": 1, "heads": 2, "mlp": 32},
            resnet_size={"embedding": 8, "hidden_sizes": [8, 16], "depths": [1, 1]},
            n_roots=2, children=2, levels=1, deep_children=2, deep_levels=2, chain_stages=2, merge_roots=2,
            merge_children=2, root_steps=20,
            root_batch_size=32, classes_per_task=4, ft_epochs=(1,), ft_images_per_class=(6,), ft_batch_sizes=(16,),
            lora_ranks=(1, 2), lora_rank_fixed=2, trace_every=5, c_grid=(0.0, 0.3), prune_amounts=(0.0, 0.5),
            quant_repeats=2, size_grid=(4, 6), timing_sizes=(20, 40), timing_dim=32,
        ),
        "default": MotherConfig(),
        "paper": MotherConfig(
            data=DataConfig(source="cifar100", n_train=500, n_test=100),
            hub=("google/vit-base-patch16-224", "google/vit-base-patch16-224-in21k", "facebook/vit-mae-base",
                 "facebook/dino-vitb16", "facebook/vit-msn-base"),  # MoTHer App. B
            deep_levels=4, lora_ranks=(8, 16, 32, 64), lora_rank_fixed=16, classes_per_task=50,
            ft_images_per_class=(100, 250), ft_lrs=(1e-5, 3e-5, 1e-4), lora_lrs=(1e-4, 3e-4, 1e-3),
            timing_sizes=(100, 1000, 10000),
        ),
    },
    "lineage": {
        "smoke": LineageConfig(heldout_roots=2, max_pairs=200),
        "default": LineageConfig(),
        "paper": LineageConfig(heldout_roots=5, subsets=("FT", "LoRA-V", "LoRA-F", "Mixed"), max_pairs=20000),
    },
    "aligned": {
        "smoke": AlignedConfig(epochs=6, r_u=4, r_v=4, r_t=8, layer_filter=("down_blocks.1.attentions.0.transformer_blocks.0.attn2",),
                               ks=(1,), repeats=2, n_queries=2, n_retrieved=2),
        "default": AlignedConfig(),
        "paper": AlignedConfig(text_encoder="clip", clip_name="openai/clip-vit-large-patch14",
                               encoder_ablation=("clip", "minilm", "bow", "random"), epochs=500, r_u=128, r_v=128,
                               ks=(1, 3, 5, 10), repeats=3),
    },
}


def sections() -> list[str]:
    return sorted(_SECTIONS)


def get_config(section: str, profile: str, overrides: dict[str, Any] | None = None, seed: int | None = None):
    """The config of ``section`` under ``profile``, with ``overrides`` applied by field name.

    ``seed`` (if given) replaces the config's master seed. Nested data settings are overridden
    with a dict, e.g. ``{"data": {"n_train": 100}}``.
    """
    if section not in _SECTIONS:
        raise ProfileError(f"unknown section {section!r}; valid sections: {sections()}")
    if profile not in PROFILES:
        raise ProfileError(f"unknown profile {profile!r}; valid profiles: {list(PROFILES)}")
    cfg = _SECTIONS[section][profile] if profile in _SECTIONS[section] else _SECTIONS[section][base_profile(profile)]
    overrides = dict(overrides or {})
    if seed is not None:
        overrides["seed"] = seed
    return _apply(cfg, overrides, section)


def base_profile(profile: str) -> str:
    """The profile whose zoos and settings ``profile`` extends: ``scaling`` extends ``default``."""
    return "default" if profile == "scaling" else profile


def _apply(cfg: Any, overrides: dict[str, Any], where: str) -> Any:
    valid = {f.name: f for f in dataclasses.fields(cfg)}
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ProfileError(f"unknown override(s) {unknown} for {where}; valid names: {sorted(valid)}")
    changes = {}
    for name, value in overrides.items():
        current = getattr(cfg, name)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ProfileError(f"override {where}.{name} must be a dict of {sorted(f.name for f in dataclasses.fields(current))}")
            changes[name] = _apply(current, value, f"{where}.{name}")
        else:
            changes[name] = _coerce(value, current, f"{where}.{name}")
    return dataclasses.replace(cfg, **changes)


def _coerce(value: Any, current: Any, where: str) -> Any:
    if isinstance(current, bool) or current is None:
        ok = isinstance(value, type(current)) if current is not None else True
    elif isinstance(current, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(current, tuple):
        ok = isinstance(value, (list, tuple))
        value = tuple(value) if ok else value
    else:
        ok = isinstance(value, type(current)) and not isinstance(value, bool)
    if not ok:
        raise ProfileError(f"override {where}={value!r} has the wrong type; expected {type(current).__name__}")
    return value


def settings_hash(cfg: Any, n: int = 10) -> str:
    """Short stable hash of a config or a plain dict of settings (names cache folders, so
    other settings get other folders)."""
    blob = json.dumps(cfg if isinstance(cfg, dict) else as_dict(cfg), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:n]


def as_dict(cfg: Any) -> dict[str, Any]:
    """A config as a plain JSON-serialisable dict (for zoo settings and claims records)."""
    return dataclasses.asdict(cfg)
