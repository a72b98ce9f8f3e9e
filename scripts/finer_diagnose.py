"""Where Pattern B/C's lost D_r accuracy goes: for one seed, the full loss at Table S1 and at the
searched settings (read from finer_full.py's results), the share of D_r's test errors that are
predicted as the poisoned class, and D_r's accuracy when that class's output is ignored.

    python scripts/finer_diagnose.py --runs runs/finer-full --pattern B --transform tile
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

import obliviate
from obliviate.data import Dataset
from obliviate.finer import build_finer_data
from obliviate.finer.forgetting import pretraining_fisher, selective_forget, truncated_predict
from obliviate.finer.tuning import paper_settings
from obliviate.training import fit, predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/finer-full"))
    parser.add_argument("--pattern", default="B")
    parser.add_argument("--transform", default="tile")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fisher", default="retain")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    rows = [json.loads(line) for line in (args.runs / "results.jsonl").read_text().splitlines()]
    search = next(r for r in rows if r["kind"] == "search" and r["pattern"] == args.pattern
                  and r["transform"] == args.transform and r.get("fisher") == args.fisher)  # fmt: skip
    base = paper_settings("fashion-mnist", args.transform, args.pattern, seed=args.seed)
    settings = {"table-s1": base, "searched": dataclasses.replace(base, **search["best"])}

    raw = obliviate.load_dataset("fashion-mnist", data_dir=args.data_dir)
    data = build_finer_data(raw, [0], args.transform)
    torch.manual_seed(args.seed)
    net = obliviate.create_model("hardtanh-mlp", input_shape=raw.input_shape, num_classes=10)
    fit(net, data.pretraining().x, data.pretraining().y,
        obliviate.TrainConfig(epochs=10, seed=args.seed), progress=False)  # fmt: skip
    net.eval()
    fisher = pretraining_fisher(net, data, on=args.fisher)
    test = data.retain.test
    out = {"pattern": args.pattern, "transform": args.transform, "seed": args.seed,
           "fisher": args.fisher}  # fmt: skip
    models = {"pretrained": net}
    for name, s in settings.items():
        models[name] = selective_forget(net, data, s, fisher=fisher)
    for name, model in models.items():
        pred = predict(model, test.x)
        wrong = pred != test.y
        masked = truncated_predict(model, test.x, list(data.classes))
        out[name] = {
            "D_r": 100 * float((~wrong).float().mean()),
            "errors_to_class_0_pct": 100 * float((pred[wrong] == 0).float().mean()),
            "D_r_with_class_0_ignored": 100 * float((masked == test.y).float().mean()),
        }
        print(json.dumps({name: out[name]}), flush=True)
    path = args.runs / f"diagnose-{args.pattern}-{args.transform}-{args.seed}.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
