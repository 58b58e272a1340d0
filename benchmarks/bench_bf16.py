"""bfloat16 autocast vs float32 on the kit's models, on this CPU, in one run (issue 16).

    .venv/bin/python benchmarks/bench_bf16.py [--steps 12] [--threads 1]

For each model (the tiny ViT at hidden 32 / 64 / 128, ResNet9 at width 8 / 16, the diffusion
UNet), one training step (forward, backward, AdamW) on a fixed batch: median milliseconds with
float32 (the reference, same process) and with ``torch.autocast("cpu", dtype=torch.bfloat16)``
(float32 master weights), the speed-up, and the relative gap between the two losses after the
same steps from the same start. The kit trains in float32 unless bf16 is faster *and* the results
hold; the table says whether it is faster. Threads: 1 by default, as each zoo worker uses.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from probex_lib import diffusion, profiles, vision
from probex_lib.nets import ResNet9


def _models() -> list[tuple[str, torch.nn.Module, torch.Tensor, torch.Tensor, str]]:
    torch.manual_seed(0)
    x, y = torch.randn(128, 3, 32, 32), torch.randint(0, 50, (128,))
    out = []
    for h in (32, 64, 128):
        size = {**profiles.VIT_SIZE, "hidden_size": h, "mlp": 4 * h}
        out.append((f"ViT hidden {h}", vision.classifier_for("vit", 50, size), x, y, "vit"))
    for w in (8, 16):
        out.append((f"ResNet9 width {w}", ResNet9(w, 50), x[:64], y[:64], "resnet9"))
    unet = diffusion.build_unet(profiles.UNET_SIZE)
    out.append(("diffusion UNet (default size)", unet, torch.randn(64, 3, 16, 16), torch.randn(64, 10, 384), "unet"))
    return out


def _loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "vit":
        return F.cross_entropy(model(pixel_values=x).logits, y)
    if kind == "resnet9":
        return F.cross_entropy(model(x), y)
    t = torch.full((len(x),), 500, dtype=torch.long)
    return F.mse_loss(model(x, t, encoder_hidden_states=y).sample, x)


def _run(model: torch.nn.Module, x, y, kind: str, steps: int, bf16: bool) -> tuple[float, float]:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    times, loss = [], torch.tensor(0.0)
    for _ in range(steps):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = _loss(model, x, y, kind)
        opt.zero_grad()
        loss.float().backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return statistics.median(times[2:]) * 1000, float(loss.detach())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}; {args.steps} steps each (median of the last {args.steps - 2}); "
          f"CPU bf16 support: {torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()}")
    print(f"{'model':32s} {'fp32 ms':>9s} {'bf16 ms':>9s} {'speed-up':>9s} {'loss gap':>9s}")
    for name, model, x, y, kind in _models():
        ref = copy.deepcopy(model)
        ms32, l32 = _run(ref, x, y, kind, args.steps, False)
        ms16, l16 = _run(model, x, y, kind, args.steps, True)
        print(f"{name:32s} {ms32:9.1f} {ms16:9.1f} {ms32 / ms16:8.2f}x {abs(l16 - l32) / max(abs(l32), 1e-9):9.3f}")


if __name__ == "__main__":
    main()
