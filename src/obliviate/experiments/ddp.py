"""Issue 17's checks with numbers: ``fc`` on digits trained in one process, by ``torchrun`` with
two gloo ranks and by ``--nproc-per-node 2``; each forgotten one class at a time (every class);
and a hand-written module trained in a plain loop with ``CodeCollate``, wrapped and forgotten
(the numbers the README quotes).

    python scripts/ddp_check.py [--out runs/ddp]
"""

from __future__ import annotations

import logging
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

import obliviate

log = logging.getLogger(__name__)
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class DdpOptions:
    out: Path = field(default=Path("runs/ddp"), metadata={"type": Path})


def every_class(bundle: obliviate.ModelBundle, data) -> str:
    fe, ar = [], []
    for c in range(bundle.num_classes):
        forgotten = obliviate.forget(bundle, [c])
        assert forgotten.history[-1]["verified"] is True
        report = obliviate.evaluate(forgotten, data, relearn_steps=0)
        fe.append(report.forget_err)
        ar.append(report.retain_acc)
    return (f"FE min {min(fe):.1f} mean {sum(fe) / len(fe):.1f}; A_R min {min(ar):.1f} "
            f"mean {sum(ar) / len(ar):.1f} (10 single-class requests)")  # fmt: skip


def check(options: DdpOptions) -> None:
    options.out.mkdir(parents=True, exist_ok=True)
    data = obliviate.load_dataset("digits")
    files = {"one process": options.out / "one.safetensors",
             "torchrun, 2 gloo ranks": options.out / "torchrun.safetensors",
             "--nproc-per-node 2": options.out / "nproc.safetensors"}  # fmt: skip
    common = ["train", "--dataset", "digits", "--model", "fc", "--device", "cpu"]
    subprocess.run([str(BIN / "obliviate"), *common, "--out", str(files["one process"])],
                   check=True)  # fmt: skip
    subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc-per-node=2", "-m", "obliviate",
                    *common, "--out", str(files["torchrun, 2 gloo ranks"])], check=True)  # fmt: skip
    subprocess.run([str(BIN / "obliviate"), *common, "--nproc-per-node", "2", "--out",
                    str(files["--nproc-per-node 2"])], check=True)  # fmt: skip
    bundles = {name: obliviate.load(path) for name, path in files.items()}
    for name, bundle in bundles.items():
        acc = obliviate.evaluate(bundle, data).retain_acc
        log.info("%s: world size %s, test accuracy %.2f %%; %s", name,
                 bundle.train_config["world_size"], acc, every_class(bundle, data))
    a, b = bundles["torchrun, 2 gloo ranks"], bundles["--nproc-per-node 2"]
    same = all(torch.equal(a.model.state_dict()[k], v) for k, v in b.model.state_dict().items())
    log.info("torchrun and --nproc-per-node give identical weights: %s", same)

    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    codes = obliviate.MnemonicCodes.generate(10, (1, 8, 8), obliviate.CodeConfig(t_mix=0.1))
    loader = DataLoader(TensorDataset(data.train.x, data.train.y), batch_size=64, shuffle=True,
                        collate_fn=obliviate.CodeCollate(codes))  # fmt: skip
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64),
                        nn.ReLU(), nn.Linear(64, 10))  # fmt: skip
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for _ in range(30):
        for x, y in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            optimizer.step()
    bundle = obliviate.wrap(net, num_classes=10, input_shape=(1, 8, 8), codes=codes,
                            statistics=data.train)  # fmt: skip
    acc = obliviate.evaluate(bundle, data).retain_acc
    log.info("plain loop with CodeCollate: test accuracy %.2f %%; %s", acc,
             every_class(bundle, data))

