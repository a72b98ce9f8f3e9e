"""Pattern A settings on Fashion-MNIST (docs/results/finer-forgetting.md): pretrain the paper's MLP
(seed 0, as `obliviate backdoor` does), then run RLD at several lr / lambda_KL and print D_r / D_f
test accuracy, plus the pretraining Fisher's largest entry (SGD with momentum 0.9 on the EWC
term is stable only while lr * 2 lambda_KL max F < 3.8).
Usage: python scripts/pattern_a_grid.py   (about 6 minutes on 2 CPU cores)
"""

from __future__ import annotations

import obliviate
from obliviate import ObliviateError
from obliviate.data import Dataset
from obliviate.finer import ForgetSettings, accuracies, build_finer_data, pretraining_fisher
from obliviate.finer.forgetting import selective_forget

data = obliviate.load_dataset("fashion-mnist")
finer = build_finer_data(data, [0], "none")
pre = Dataset("fashion-mnist+none", finer.pretraining(), data.test, data.num_classes,
              data.input_shape)  # fmt: skip
model = obliviate.train(pre, "hardtanh-mlp", config=obliviate.TrainConfig(seed=0), codes=None,
                        progress=False).model  # fmt: skip
fisher = pretraining_fisher(model, finer)
max_f = max(float(f.max()) for f in fisher.values())
base = accuracies(model, finer)
print(f"max F = {max_f:.3f}; pretrained D_r {100 * base['D_r']:.1f} / D_f {100 * base['D_f']:.1f}\n")
print("| lr / λ_KL | lr·2λ_KL·max F | D_r / D_f |")
print("|---|---|---|")
for lr, lam in [(1e-3, 1e5), (1e-3, 1e3), (1e-3, 1e4), (3e-4, 1e4), (3e-4, 3e4), (1e-4, 1e5),
                (1e-5, 1e5)]:  # fmt: skip
    try:
        out = selective_forget(model, finer, ForgetSettings(lr=lr, lambda_kl=lam), fisher=fisher)
        acc = accuracies(out, finer)
        cell = f"{100 * acc['D_r']:.1f} / {100 * acc['D_f']:.1f}"
    except ObliviateError as exc:
        cell = f"diverged ({exc})"
    print(f"| {lr:g} / {lam:g} | {lr * 2 * lam * max_f:.2f} | {cell} |", flush=True)
