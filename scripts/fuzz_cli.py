"""Run bad inputs of every kind through the installed `obliviate` command and check the promise:
exit code 2, one line on stderr that starts with "error:", no traceback, nothing written, and
every input file unchanged.

    python scripts/fuzz_cli.py [--seed 0] [--damaged 12] [--workers 4]

Kinds: usage mistakes (missing, mistyped or unknown options and commands, bad devices), outputs
that would overwrite an input or a special file, model files with damaged bytes or edited
metadata and tensors, and a method whose output is not finite. It prints a table of outcomes
and exits 1 if any case breaks the promise. `tests/test_fuzz_cli.py` runs it in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SCRIPT = Path(sys.executable).with_name("obliviate")


def make_model(folder: Path) -> Path:
    path = folder / "m.safetensors"
    subprocess.run([str(SCRIPT), "train", "--epochs", "3", "--out", str(path)], check=True,
                   capture_output=True, env={**os.environ, "OBLIVIATE_NO_PROGRESS": "1"})  # fmt: skip
    return path


def edited(model: Path, folder: Path, name: str, meta_edit=None, tensor_edit=None) -> Path:
    """A copy of ``model`` with its metadata and/or tensors edited."""
    import torch  # only here: the cases themselves run in subprocesses
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(model), framework="pt") as fh:
        meta = json.loads(fh.metadata()["obliviate"])
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    if meta_edit:
        meta_edit(meta)
    if tensor_edit:
        tensor_edit(tensors, torch)
    path = folder / f"{name}.safetensors"
    save_file(tensors, str(path), metadata={"obliviate": json.dumps(meta)})
    return path


def set_inf(tensors, torch):
    tensors["weights.classifier.weight"][0, 0] = float("inf")


def cases(model: Path, folder: Path, rng: random.Random, damaged: int) -> dict[str, list[str]]:
    m, out = str(model), str(folder / "out.safetensors")
    sub = folder / "sub"
    sub.mkdir()
    link = folder / "alias.safetensors"
    link.hardlink_to(model)
    forget = ["forget", "--classes", "0", "--out", out]
    found = {
        "usage: missing --classes": ["forget", m, "--out", out],
        "usage: lambda not a number": [*forget, m, "--lambda1", "x"],
        "usage: unknown option": [*forget, m, "--nope"],
        "usage: unknown command": ["forgot", m],
        "usage: epochs not an integer": ["train", "--epochs", "two", "--out", out],
        "usage: unknown device": [*forget, m, "--device", "tpu"],
        "usage: unknown dataset": ["train", "--dataset", "imagenet", "--out", out],
        "usage: batch not divisible by the ranks": ["train", "--nproc-per-node", "3", "--out", out],
        "usage: no ranks": ["retrofit", str(model), "--nproc-per-node", "0", "--out", out],
        "usage: unknown method": [*forget, m, "--method", "x"],
        "usage: unknown hyperparameter": [*forget, m, "--hp", "nope=1"],
        "usage: bad hyperparameter value": [*forget, m, "--hp", "margin=abc"],
        "usage: class out of range": ["forget", m, "--classes", "10", "--out", out],
        "usage: every class": ["forget", m, "--classes", ",".join(map(str, range(10))),
                               "--out", out],  # fmt: skip
        "usage: missing data dir": ["evaluate", m, "--data-dir", str(folder / "none")],
        "usage: negative relearn steps": ["evaluate", m, "--relearn-steps", "-1"],
        "usage: bench seeds": ["bench", "--seeds", "a", "--out", str(folder / "bench")],
        "output: is the input": ["forget", m, "--classes", "0", "--out", m],
        "output: is the input by inode": ["forget", m, "--classes", "0", "--out", str(link)],
        "output: report is the input": [*forget, m, "--report", m],
        "output: a directory": ["forget", m, "--classes", "0", "--out", str(sub)],
        "output: a device": ["forget", m, "--classes", "0", "--out", "/dev/null"],
        "output: missing directory": ["forget", m, "--classes", "0", "--out",
                                      str(folder / "no" / "x.safetensors")],  # fmt: skip
        "method: non-finite weights": [*forget, m, "--method", "sfdn", "--data", "digits",
                                       "--hp", "alpha=1e300"],  # fmt: skip
    }
    meta_edits = {
        "no arch": lambda d: d.pop("arch"),
        "arch a number": lambda d: d.update(arch=3),
        "num_classes huge": lambda d: d.update(num_classes=10**12),
        "input_shape huge": lambda d: d.update(input_shape=[1, 10**5, 10**5]),
        "input_shape text": lambda d: d.update(input_shape="8x8"),
        "history a string": lambda d: d.update(history="x"),
        "forgotten out of range": lambda d: d.update(forgotten_classes=[12]),
        "codes settings unknown": lambda d: d.update(codes={"mode": "replace", "colour": 1}),
        "format version text": lambda d: d.update(format_version="1"),
    }
    for name, edit in meta_edits.items():
        found[f"file: {name}"] = [*forget, str(edited(model, folder, name.replace(" ", "_"),
                                                      meta_edit=edit))]  # fmt: skip
    found["file: an inf weight"] = [*forget, str(edited(model, folder, "inf",
                                                        tensor_edit=set_inf))]  # fmt: skip
    data = model.read_bytes()
    for i in range(damaged):
        blob = bytearray(data)
        if rng.random() < 0.5:
            blob = blob[: rng.randrange(1, len(blob))]
        else:
            for _ in range(rng.randint(1, 8)):
                blob[rng.randrange(0, min(len(blob), 400))] = rng.randrange(256)
        path = folder / f"damaged{i}.safetensors"
        path.write_bytes(bytes(blob))
        found[f"file: damaged bytes #{i}"] = [*forget, str(path)]
    return found


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def check(args: list[str]) -> tuple[bool, str]:
    proc = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OBLIVIATE_NO_PROGRESS": "1"})  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    problems = []
    if proc.returncode != 2:
        problems.append(f"exit {proc.returncode}")
    if "Traceback" in proc.stderr:
        problems.append("traceback")
    if len(lines) != 1 or not lines[0].startswith("error: "):
        problems.append(f"{len(lines)} stderr lines")
    return not problems, "; ".join(problems) or (lines[0][:90] if lines else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--damaged", type=int, default=12, help="randomly damaged model files")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = make_model(folder)
        todo = cases(model, folder, random.Random(args.seed), args.damaged)
        broken = 0
        print("| case | promise kept | what happened |\n|---|---|---|")
        before = snapshot(folder)  # no case may write or change any file in it
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            results = list(pool.map(check, todo.values()))
        after = snapshot(folder)
        changed = sorted(set(before.items()) ^ set(after.items()))
        for name, (ok, what) in zip(todo, results):
            broken += not ok
            print(f"| {name} | {'yes' if ok else 'NO'} | {what} |")
        if changed:
            broken += 1
            files = sorted({p for p, _ in changed})
            print(f"| (all) files written or changed | NO | {', '.join(files)[:200]} |")
        print(f"\n{len(todo)} cases, {broken} broke the promise", file=sys.stderr)
        return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
