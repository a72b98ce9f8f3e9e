"""What the commands print on the terminal: the lines that describe a forget, an evaluation,
the depth evidence and a retrofit, and the tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table

from obliviate.cli.options import digest_matches

if TYPE_CHECKING:
    from obliviate.metrics import EvalReport


def fmt_number(value: float | None) -> str:
    """A table cell: two decimals, ``-`` for a value not measured."""
    return "-" if value is None else f"{value:.2f}"


def report_table(reports: dict[str, EvalReport], title: str,
                 forget_classes: Any = (), class_names: dict[int, str] | None = None) -> Table:  # fmt: skip
    """A rich table with one column per report: summary metrics, then per-class accuracy (the
    rows of ``forget_classes`` marked; each class named by ``class_names`` where known)."""
    table = Table(title=title)
    table.add_column("metric")
    for name in reports:
        table.add_column(name, justify="right")
    nothing_forgotten = all(r.forget_err is None for r in reports.values())
    rows = [
        ("accuracy % (all classes)" if nothing_forgotten else "A_R retain acc %", "retain_acc"),
        ("FE forget err %", "forget_err"),
        ("RE relearn err %", "relearn_err"),
        ("S score", "score"),
        ("forget seconds", "forget_seconds"),
    ]
    for label, key in rows:
        values = [getattr(r, key) for r in reports.values()]
        cells = [f"{v:.4f}" if key == "forget_seconds" and v is not None else fmt_number(v)
                 for v in values]  # fmt: skip
        table.add_row(label, *cells)
    first = next(iter(reports.values()))
    for c in first.per_class_acc:
        name = (class_names or {}).get(c)
        label = (f"class {c}" + (f" ({name})" if name not in (None, str(c)) else "") + " acc %"
                 + (" (forget)" if c in forget_classes else ""))  # fmt: skip
        table.add_row(label, *[fmt_number(r.per_class_acc[c]) for r in reports.values()])
    return table


def class_names_of(names: Any) -> dict[int, str]:
    """``{index: name}`` of a model's class names (``None``: unknown, an empty mapping)."""
    return dict(enumerate(names or ()))


def named_classes(classes: list[int], names: dict[int, str]) -> str:
    """``"[3, 9] (Dress, Ankle boot)"``: the classes, then their names, unless a name is
    unknown or every name is just its index (digits' "0".."9")."""
    shown = [names.get(c) for c in classes]
    if None in shown or shown == [str(c) for c in classes]:
        return str(list(classes))
    return f"{list(classes)} ({', '.join(shown)})"


def describe_forget(record: dict) -> list[str]:
    """The terminal lines of a forget record: what was done, how strong, verified on what."""
    how = f"with {record['method']} in {record['seconds'] * 1000:.1f} ms"
    if record.get("mode") == "calibrated":
        needed = ", ".join(f"{k.replace('_', ' ')} {'none suffices' if v is None else f'{v:.3g}'}"
                           for k, v in record.get("strength_needed", {}).items())  # fmt: skip
        how += f", strength {record['strength']:.3g} (needed: {needed})"
    elif "lambda1" in record:
        how += f", paper mode lambda1={record['lambda1']:g} lambda2={record['lambda2']:g}"
        how += f", sign {record['sign']}"
    names = dict(zip(record["classes"], record.get("class_names") or [], strict=False))
    lines = [f"forgot classes {named_classes(record['classes'], names)} {how}"]
    verification = record.get("verification")
    verified = record.get("verified")
    if verification is None:
        lines.append("verified: not checked (this method does not check its result; "
                     "measure it with 'obliviate evaluate')")  # fmt: skip
        return lines
    parts = []
    for name, check in verification.get("checks", {}).items():
        state = "passed" if check.get("passed") else "FAILED"
        if name in ("codes", "fisher_samples"):
            parts.append(f"{name.replace('_', ' ')} {state} (worst forget-class margin "
                         f"{check['forget_margin_max']:.2f}, target <= {check['target']:g})")  # fmt: skip
        elif name == "training_statistics":
            parts.append(f"training statistics {state} (the bound that puts every training "
                         "sample of the forget classes below a kept class)")  # fmt: skip
        elif name == "retain_bound":
            bound = check.get("training_accuracy_drop_bound")
            parts.append(f"kept-class bound {state} (" + ("no bound without a confusion matrix"
                         if bound is None else f"at most {bound:.1f} points of training accuracy "
                         f"lost, allowed {check['max_retain_drop']:g}") + ")")  # fmt: skip
        elif name == "data":
            detail = []
            if "forget_error" in check:
                detail.append(f"forget error {check['forget_error']:.2f}% on "
                              f"{check['forget_samples']} samples")  # fmt: skip
            if "retain_accuracy" in check:
                detail.append(f"retain accuracy {check['retain_accuracy']:.2f}% vs oracle "
                              f"{check['oracle_retain_accuracy']:.2f}%")  # fmt: skip
            if check.get("reason"):  # it repeats the numbers it gives
                detail = [d for d in detail if d not in check["reason"]] + [check["reason"]]
            parts.append(f"data {state} ({', '.join(detail)})")
        elif name == "check_data":
            detail = [f"{check['retain_samples']} held-out samples of the kept classes"]
            if "forget_error" in check:
                detail.append(f"forget error {check['forget_error']:.2f}% on "
                              f"{check['forget_samples']} training samples")  # fmt: skip
            if "retain_drop_bound" in check:
                detail.append(f"accuracy {check['retain_accuracy']:.2f}% vs oracle "
                              f"{check['oracle_retain_accuracy']:.2f}%, {check['harmed']} "
                              f"harmed: the drop is at most {check['retain_drop_bound']:.2f} "
                              f"points at {check['confidence']:.0%} confidence, allowed "
                              f"{check['max_retain_drop']:g}")  # fmt: skip
            if check.get("reason") and not check.get("passed"):
                detail = detail[:1] + [check["reason"]]
            parts.append(f"check data {state} ({'; '.join(detail)})")
    lines.append(f"verified: {str(bool(verified)).lower()} — " + "; ".join(parts))
    lines.extend(describe_depth(record))
    if not verified:
        lines.append(f"WARNING: written with --force although not verified: "
                     f"{verification.get('reason')}")  # fmt: skip
    return lines


def describe_depth(record: dict) -> list[str]:
    """What a forget changed and what that means for an attacker who holds the weights."""
    depth = record.get("depth")
    if depth == "features":
        return [f"depth: features — {record.get('scope')}; compare with retraining: "
                "'obliviate evidence OUT --retrain --original MODEL'"]
    if depth == "output":
        note = record.get("depth_note") or ""
        return [f"depth: output only — the features still hold the class (prototype or relearn "
                f"attacks with a few labelled samples recover it); {note}".rstrip("; ")]
    return []


def _record_depth(record: dict) -> str:
    """How deep a forget record says it went: its ``depth``, else read from its ``scope``."""
    depth = record.get("depth")
    if depth:
        return "output only" if depth == "output" else str(depth)
    if "classifier" in str(record.get("scope", "")):
        return "output only"
    return "not recorded"


def describe_evaluation(bundle: Any, used: list[int], given: bool, original: Any) -> list[str]:
    """The lines above the evaluate table: what was evaluated, which classes count as
    forgotten and why, what the last record verified, and any mismatch worth a note."""
    recorded = sorted(bundle.forgotten_classes)
    names = class_names_of(bundle.class_names)
    lines = [f"model: {bundle.arch} on {bundle.dataset or 'the dataset given'} (test split)"]
    if not used:
        lines.append("forget classes: none (the model has forgotten nothing): the first row is "
                     "the accuracy over every class")  # fmt: skip
    elif given:
        lines.append(f"forget classes: {named_classes(used, names)} (from --forget-classes)")
    else:
        lines.append(f"forget classes: {named_classes(used, names)} (from the model file's "
                     f"history, {len(bundle.history)} record(s))")  # fmt: skip
    if bundle.history:
        last = bundle.history[-1]
        verified = last.get("verified")
        shown = "not checked (null)" if verified is None else str(bool(verified)).lower()
        lines.append(f"last record: {last.get('method')} forgot {last.get('classes')} at "
                     f"{last.get('utc')}; verified: {shown}; depth: {_record_depth(last)}")  # fmt: skip
    if given and used != recorded:
        kept = [c for c in recorded if c not in used]
        unforgotten = [c for c in used if c not in recorded]
        parts = [f"note: --forget-classes {used} differs from what the model forgot "
                 f"({recorded or 'nothing'})"]  # fmt: skip
        if kept:
            parts.append(f"classes {kept}, forgotten by the model, count as retained in A_R here")
        if unforgotten:
            parts.append(f"classes {unforgotten} were never forgotten, so FE measures classes "
                         "the model still knows")  # fmt: skip
        lines.append("; ".join(parts))
    if original is not None and bundle.history:
        first = bundle.history[0].get("input_sha256")
        if first and not digest_matches(first, original.model):
            lines.append("note: the --reference model is not the one this model was forgotten "
                         "from (its weights' SHA-256 differs from the first record's "
                         "input_sha256)")  # fmt: skip
    return lines


def evaluation_legend(forgot: bool, relearn_steps: int, oracle: bool) -> list[str]:
    """What each row of the evaluate table means, and which direction is good."""
    if not forgot:
        return ["accuracy: share of test samples classified right (higher is better); "
                "class c acc: the same per class"]  # fmt: skip
    lines = [
        "legend (test split; percentages):",
        "  A_R  accuracy on the kept classes' samples; higher is better, and an output-layer "
        "forget cannot beat the truncation oracle (the original with the forget classes' "
        "logits masked)" + (", shown beside" if oracle else ", shown with --reference ORIGINAL"),
        "  FE   error on the forget classes' samples; higher is better (100: never predicted)",
    ]  # fmt: skip
    if relearn_steps > 0:
        lines += [
            f"  RE   FE again after the relearn probe: the last layer retrained {relearn_steps} "
            "steps on the whole training set, forget classes included; higher means harder to "
            "relearn. A forget of depth 'output only' leaves the features the probe relearns "
            "from, so RE near 0 is expected after it, verified or not: it says the features "
            "still hold the classes (docs/results/reliability.md)",
            "  S    (A_R + (FE + RE) / 2) / 2, the paper's score; higher is better",
        ]  # fmt: skip
    else:
        lines.append("  RE, S  not measured (--relearn-steps 0)")
    lines += ["  forget seconds  the last forget request's own time (from its record); lower is "
              "better", "  class c acc  test accuracy of each class; '(forget)' marks the forget "
              "classes, where lower is better"]  # fmt: skip
    return lines


def describe_retrofit(record: dict) -> list[str]:
    """The terminal lines of a retrofit record: what was done, and whether it met its goal."""
    origin = record["source"]
    what = origin.get("arch") or origin.get("source")
    lines = [
        f"retrofitted codes into {what} ({origin.get('kind')}"
        f"{', new head' if origin.get('head_replaced') else ''}) on {record['dataset']}: "
        f"{record['steps']} steps in {record['seconds']:.1f} s; test accuracy "
        f"{record['accuracy_before']:.2f} % -> {record['accuracy_after']:.2f} % "
        f"({-record['accuracy_drop']:+.2f} points, {record['check_samples']} samples); codes "
        f"classified as their class: {record['code_accuracy']:.1f} %"
    ]
    if not record["codes_learned"]:
        lines.append(f"WARNING: the codes of classes {record['codes_missed']} are not classified "
                     "as their class; the calibrated forget still solves its strength and "
                     "verifies each request, but paper mode (--lambda1/--lambda2) relies on "
                     "learned codes. More --steps or a larger --t-mix learn them")  # fmt: skip
    if not record["accuracy_kept"]:
        lines.append(f"WARNING: the retrofit cost {record['accuracy_drop']:.2f} points of test "
                     f"accuracy, more than --max-accuracy-drop {record['goal']['max_accuracy_drop']:g}; "
                     "a lower --lr or more --steps may keep more")  # fmt: skip
    if record["classes_with_negative_features"]:
        lines.append(f"note: {record['classes_with_negative_features']} classes have penultimate "
                     "features below zero on their training samples; the data-free forget "
                     "cannot bound those and will ask for --data")  # fmt: skip
    if record["goal_met"]:
        lines.append("goal met: every code learned, accuracy kept within "
                     f"{record['goal']['max_accuracy_drop']:g} point(s)")  # fmt: skip
    return lines


def lirf_table(title: str, rows: dict[str, dict[str, float]]) -> Table:
    """LIRF's four accuracies (pre, dep, harmonic mean, average) of each model, one row each."""
    table = Table(title=title)
    table.add_column("model")
    for name in ("Pre Acc", "Dep Acc", "H Mean", "Avg Acc"):
        table.add_column(name, justify="right")
    for label, m in rows.items():
        table.add_row(label, *[fmt_number(m[k])
                               for k in ("pre_acc", "dep_acc", "h_mean", "avg_acc")])  # fmt: skip
    return table
