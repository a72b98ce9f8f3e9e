"""Run bad inputs of every kind through the installed `obliviate` command and check the promise:
exit code 2, one line on stderr that starts with "error:", no traceback, nothing written, and
every input file unchanged.

    python scripts/fuzz_cli.py [--seed 0] [--damaged 12] [--workers 4]

Kinds: usage mistakes (missing, mistyped or unknown options and commands, bad devices), number
options out of range (beyond 64 bits, below their lowest, NaN, infinite), outputs that would
overwrite an input or a special file or are not named .safetensors, a class forgotten already,
model files with damaged bytes, edited metadata (values of the wrong JSON type, metadata that
is not a JSON object) and tensors, and a method whose output is not finite. Then Ctrl-C at
random moments of `obliviate train`, whose promise is exit 130, the one line `interrupted` and
nothing written. It prints a table of outcomes and exits 1 if any case breaks its promise.
`tests/test_fuzz_cli.py` runs it in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SCRIPT = Path(sys.executable).with_name("obliviate")


def make_model(folder: Path) -> Path:
    path = folder / "m.safetensors"
    subprocess.run([str(SCRIPT), "train", "--epochs", "3", "--out", str(path)], check=True,
                   capture_output=True, env={**os.environ, "OBLIVIATE_NO_PROGRESS": "1"})  # fmt: skip
    subprocess.run([str(SCRIPT), "forget", str(path), "--classes", "0", "--force", "--out",
                    str(folder / "forgot-0.safetensors")], check=True, capture_output=True)  # fmt: skip
    return path


def with_raw_metadata(model: Path, folder: Path, name: str, raw: str) -> Path:
    """A copy of ``model`` whose metadata is the JSON text ``raw``."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(model), framework="pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    path = folder / f"{name}.safetensors"
    save_file(tensors, str(path), metadata={"obliviate": raw})
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
        "usage: class forgotten already": ["forget", str(folder / "forgot-0.safetensors"),
                                           "--classes", "0", "--out", out],  # fmt: skip
        "output: not .safetensors": ["forget", m, "--classes", "0", "--out", str(folder / "x.pt")],
        "number: seed beyond 64 bits": ["train", "--seed", "99999999999999999999", "--out", out],
        "number: epochs 0": ["train", "--epochs", "0", "--out", out],
        "number: lr NaN": ["train", "--lr", "nan", "--out", out],
        "number: t-mix above 1": ["train", "--t-mix", "1.5", "--out", out],
        "number: batch size beyond 64 bits": ["retrofit", m, "--batch-size", str(2**64),
                                              "--out", out],  # fmt: skip
        "number: lambda1 infinite": [*forget, m, "--lambda1", "inf"],
        "number: relearn steps beyond 32 bits": ["evaluate", m, "--relearn-steps", str(2**40)],
        "number: negative seed": ["forget", m, "--classes", "0", "--seed", "-3", "--out", out],
    }
    for number in range(4):  # random members of the two number families
        if rng.random() < 0.5:
            option = rng.choice(["--seed", "--epochs", "--batch-size"])
            value = str(rng.choice([-1, 1]) * rng.randrange(2**31, 2**80))
        else:
            option = rng.choice(["--lr", "--momentum", "--weight-decay", "--t-mix"])
            value = rng.choice(["nan", "inf", "-inf", str(-rng.uniform(1e-6, 1e6))])
        found[f"number: train {option} {value[:12]}"] = ["train", option, value, "--out", out]
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
    type_edits = {
        "dataset a number": lambda d: d.update(dataset=7),
        "train_config a list": lambda d: d.update(train_config=[1]),
        "retrofit a string": lambda d: d.update(retrofit="yes"),
        "stats_samples a boolean": lambda d: d.update(stats_samples=True),
    }
    for name, edit in type_edits.items():
        found[f"file: {name}"] = [*forget, str(edited(model, folder, name.replace(" ", "_"),
                                                      meta_edit=edit))]  # fmt: skip
    for name, raw in {"a list": "[1, 2]", "a number": "3", "a string": '"model"',
                      "null": "null", "true": "true"}.items():  # fmt: skip
        path = with_raw_metadata(model, folder, "meta_" + name.replace(" ", "_"), raw)
        found[f"file: metadata is {name}"] = [*forget, str(path)]
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


def check_interrupt(delay: float, folder: Path) -> tuple[bool, str]:
    """Ctrl-C ``delay`` seconds into ``obliviate train``: exit 130, the one line ``interrupted``
    (after any progress lines), nothing written into ``folder``."""
    folder.mkdir()
    proc = subprocess.Popen([str(SCRIPT), "train", "--epochs", "200", "--out",
                             str(folder / "m.safetensors")], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OBLIVIATE_NO_PROGRESS": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    problems = []
    if proc.returncode != 130:
        problems.append(f"exit {proc.returncode}")
    if "Traceback" in err:
        problems.append("traceback")
    if err.strip().splitlines() != ["interrupted"]:
        problems.append(f"stderr {err.strip()[-80:]!r}")
    if any(folder.iterdir()):
        problems.append("a file was left")
    return not problems, "; ".join(problems) or "interrupted, exit 130"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--damaged", type=int, default=12, help="randomly damaged model files")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--interrupts", type=int, default=4, help="Ctrl-C at random moments")
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
        rng = random.Random(args.seed)
        delays = [round(rng.uniform(0.5, 6.0), 2) for _ in range(args.interrupts)]
        for number, delay in enumerate(delays):  # one at a time: the moment depends on the load
            ok, what = check_interrupt(delay, folder / f"interrupt{number}")
            broken += not ok
            print(f"| interrupt: Ctrl-C {delay} s into train | {'yes' if ok else 'NO'} | {what} |")
        todo.update({f"interrupt {d}": [] for d in delays})
        if changed:
            broken += 1
            files = sorted({p for p, _ in changed})
            print(f"| (all) files written or changed | NO | {', '.join(files)[:200]} |")
        print(f"\n{len(todo)} cases, {broken} broke the promise", file=sys.stderr)
        return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
