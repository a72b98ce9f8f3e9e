"""Why LIRF's recover net can lose the preserved classes (docs/results/recoverable-forgetting.md).

On digits with the convnet (seed 0, 30 epochs, lr 0.01), deposit D = {0, 1} with the defaults
but 100 deposit epochs (digits has 3 steps per epoch) and the setting varied, and print:
  1. target and recover-net accuracy for lambda_re in 0, 0.1, 1;
  2. logit levels on the test images: the largest preserved logit of T0 and of the target, and
     the largest deposit logit of T0 and of the module path, for prune_ratio 0 and 0.5
     (lambda_re 0).
Usage: python scripts/lirf_diagnose.py   (about a minute on 2 CPU cores)
"""

from __future__ import annotations

import torch

import obliviate
from obliviate.recoverable import LIRFSettings, deposit_bundle, lirf_accuracy, withdraw
from obliviate.recoverable.pruning import split_network

data = obliviate.load_dataset("digits")
torch.manual_seed(0)
original = obliviate.train(data, "convnet", config=obliviate.TrainConfig(epochs=30, lr=0.01),
                           codes=None, progress=False)  # fmt: skip
x, y = data.test.x, data.test.y
dep = [0, 1]
pre = [c for c in range(10) if c not in dep]
o = lirf_accuracy(original.model, x, y, dep)
print(f"original: Pre Acc {o['pre_acc']:.1f}, Dep Acc {o['dep_acc']:.1f}\n")
print("| lambda_re | target Pre | target Dep | recover Pre | recover Dep |")
print("|---|---|---|---|---|")
for lambda_re in (0.0, 0.1, 1.0):
    target, modules, _ = deposit_bundle(original, data, [dep], LIRFSettings(epochs=100, lambda_re=lambda_re))
    t = lirf_accuracy(target.model, x, y, dep)
    r = lirf_accuracy(withdraw(target, modules).model, x, y, dep)
    print(f"| {lambda_re:g} | {t['pre_acc']:.1f} | {t['dep_acc']:.1f} | {r['pre_acc']:.1f} | "
          f"{r['dep_acc']:.1f} |")  # fmt: skip

print("\nmean over images of the largest logit (preserved images | deposit images):\n")
print("| prune_ratio | T0 preserved | target preserved | T0 deposit | module deposit |")
print("|---|---|---|---|---|")
is_pre = ~torch.isin(y, torch.tensor(dep))
for ratio in (0.0, 0.5):
    target, (module,), _ = deposit_bundle(original, data, [dep],
                                          LIRFSettings(epochs=100, lambda_re=0.0, prune_ratio=ratio))  # fmt: skip
    with torch.no_grad():
        _, back = split_network(target.model, module.info["block"])
        z0, zt, zm = original.model(x), target.model(x), back(module(x))

    def level(z: torch.Tensor, cols: list[int]) -> str:
        top = z[:, cols].max(dim=1).values
        return f"{top[is_pre].mean():.1f} \\| {top[~is_pre].mean():.1f}"

    print(f"| {ratio:g} | {level(z0, pre)} | {level(zt, pre)} | {level(z0, dep)} | "
          f"{level(zm, dep)} |")  # fmt: skip
