"""Commands that forget and judge a forget: forget, evaluate, evidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from obliviate.cli.describe import (
    class_names_of,
    describe_evaluation,
    describe_forget,
    evaluation_legend,
    report_table,
)
from obliviate.cli.evidence_view import describe_evidence, evidence_table
from obliviate.cli.group import app
from obliviate.cli.options import (
    METHODS,
    ImageSize,
    MaxMemory,
    Mean,
    Overwrite,
    Resize,
    Std,
    api,
    check_choice,
    references,
    check_dataset,
    check_model_names,
    check_outputs,
    coerce_hyperparameters,
    console,
    csv_ints,
    err_console,
    image_options,
    load,
    open_dataset,
    parse_classes,
    parse_hyperparameters,
    refuse_missed_goal,
    truncation_oracle,
    write_json_atomic,
    write_result,
)
from obliviate.errors import NotVerifiedError, ObliviateError


@app.command("forget")
def forget_cmd(
    model_file: Annotated[Path, typer.Argument(help="Trained model (.safetensors).")],
    classes: Annotated[str, typer.Option(help="Classes to forget, comma-separated: indices (0,3) or the class names the model file records (Trouser,Bag).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the forgotten model.")],
    method: Annotated[str, typer.Option(help="Unlearning method (see `obliviate list`).")] = "mnemonic",
    hp: Annotated[Optional[list[str]], typer.Option("--hp", help="Method hyperparameter KEY=VALUE (repeatable), e.g. --hp alpha=10.")] = None,
    lambda1: Annotated[Optional[float], typer.Option(help="Mnemonic lambda1 (same as --hp lambda1=...).")] = None,
    lambda2: Annotated[Optional[float], typer.Option(help="Mnemonic lambda2 (same as --hp lambda2=...).")] = None,
    data: Annotated[Optional[str], typer.Option(help="Dataset whose training split data-based methods may use.")] = None,
    data_dir: Optional[Path] = None,
    report: Annotated[Optional[Path], typer.Option(help="Write the audit record as JSON here.")] = None,
    seed: int = 0,
    device: Optional[str] = None,
    force: Annotated[bool, typer.Option("--force", help="Write the result even if the method could not verify it (recorded as verified: false).")] = False,
    check_data: Annotated[Optional[str], typer.Option(help="mnemonic: a dataset whose held-out split (test, or an image folder's val/) verifies the kept classes without the training data, by a one-sided 95% bound on their accuracy drop (at most 1 point): about 300 held-out samples in all verify a deep forget that harms none of them.")] = None,
    depth: Annotated[Optional[str], typer.Option(help="mnemonic: 'features' (edit the last feature layer too: the class leaves the features), 'output' (the classifier rows only), 'auto' (default: the deepest that verifies; features need --data or --check-data to verify the kept classes).")] = None,
    max_memory_gib: MaxMemory = 2.0,
    overwrite: Overwrite = False,
) -> None:
    """Make a model forget classes with any registered method; write the new model.

    The default (mnemonic, no lambda) finds the strength for each request and verifies the
    result; a request it cannot verify exits 2 and writes nothing, unless --force."""
    # the checks that need no torch come first: a wrong option or path fails in a fraction of
    # a second (the method registry imports torch)
    if not classes.replace(",", "").strip():
        raise ObliviateError("give at least one class, e.g. --classes 0")
    if depth is not None:
        check_choice(depth, ["auto", "features", "output"], "depth")
    check_outputs([out, report], [model_file], overwrite=overwrite)
    check_model_names([out])
    check_choice(method, METHODS.names(), "method")
    method_cls = METHODS.get(method)
    hyper = coerce_hyperparameters(method_cls, parse_hyperparameters(hp or []))
    for key, value in (("lambda1", lambda1), ("lambda2", lambda2)):
        if value is not None:
            hyper.update(coerce_hyperparameters(method_cls, {key: repr(value)}))
    if depth is not None:
        hyper.update(coerce_hyperparameters(method_cls, {"depth": depth}))
    bundle = load(model_file)
    class_list = parse_classes(classes, bundle)
    dataset = check = None
    if data is not None:
        dataset = open_dataset(data, data_dir, False, bundle, {"max_memory_gib": max_memory_gib})
    if check_data is not None:
        check = (dataset if check_data == data else
                 open_dataset(check_data, data_dir, False, bundle,
                              {"max_memory_gib": max_memory_gib}))  # fmt: skip
    try:
        result = api.forget(
            bundle, class_list, method=method, data=dataset, seed=seed, device=device,
            force=force, check_data=check, **hyper,
        )  # fmt: skip
    except NotVerifiedError as exc:  # the same refusal, in the command line's words
        reason = exc.record.get("verification", {}).get("reason") or "its checks failed"
        refuse_missed_goal(f"did not forget classes {class_list} with {method}: {reason}",
                           recorded="verified: false")
    write_result(result, out, report, result.history[-1], describe_forget)


@app.command("evaluate")
def evaluate_cmd(
    model_file: Annotated[Path, typer.Argument(help="Model to evaluate (.safetensors).")],
    dataset: Annotated[Optional[str], typer.Option(help="Dataset (default: the model's).")] = None,
    forget_classes: Annotated[Optional[str], typer.Option(help="Default: the model's forgotten classes.")] = None,
    relearn_steps: Annotated[int, typer.Option(help="Relearn-probe steps (0 skips RE and S).")] = 1000,
    relearn_lr: float = 0.01,
    seed: int = 0,
    data_dir: Optional[Path] = None,
    download: bool = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    reference: Annotated[Optional[Path], typer.Option(help="The original model this one was forgotten from: its truncation oracle (the forget classes' logits masked), the yardstick of A_R, is shown beside.")] = None,
    device: Optional[str] = None,
    image_size: ImageSize = None,
    resize: Resize = None,
    mean: Mean = None,
    std: Std = None,
    max_memory_gib: MaxMemory = 2.0,
) -> None:
    """Evaluate a model: per-class accuracy, A_R, FE, RE (relearn probe), S and forget time;
    says which classes count as forgotten and why, what the record verified, and what each
    column means."""
    if dataset is not None:
        check_dataset(dataset)
    bundle = load(model_file)
    original = load(reference) if reference is not None else None
    classes = parse_classes(forget_classes, bundle) if forget_classes is not None else None
    data = open_dataset(dataset, data_dir, download, bundle,
                    image_options(image_size, resize, mean, std, max_memory_gib))  # fmt: skip
    report = api.evaluate(
        bundle, data, classes, relearn_steps=relearn_steps, relearn_lr=relearn_lr,
        seed=seed, data_dir=data_dir, download=download, device=device,
    )  # fmt: skip
    used = sorted(set(classes)) if classes is not None else sorted(bundle.forgotten_classes)
    reports = {model_file.name: report}
    if original is not None and used:
        api.check_dataset_fits(original, data)
        oracle = truncation_oracle(original.model, data, used)
        reports[f"truncation oracle of {reference.name}"] = oracle
    lines = describe_evaluation(bundle, used, classes is not None, original)
    if json_out:
        last = bundle.history[-1] if bundle.history else {}
        payload = {**report.to_dict(), "forget_classes": used,
                   "forget_classes_from": "--forget-classes" if classes is not None else "record",
                   "verified": last.get("verified"), "depth": last.get("depth")}  # fmt: skip
        if len(reports) > 1:
            payload["oracle_retain_acc"] = reports[f"truncation oracle of {reference.name}"].retain_acc
        print(json.dumps(payload, indent=2))
        for line in lines[1:]:
            if line.startswith("note:"):
                err_console.print(line, highlight=False, soft_wrap=True)
        return
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)
    console.print(report_table(reports, title=None, forget_classes=used,
                               class_names=class_names_of(bundle.class_names)))  # fmt: skip
    for line in evaluation_legend(bool(used), relearn_steps, len(reports) > 1):
        console.print(line, highlight=False, soft_wrap=True)


@app.command("evidence")
def evidence_cmd(
    model_file: Annotated[Path, typer.Argument(help="Forgotten model to judge (.safetensors).")],
    reference: Annotated[Optional[Path], typer.Option(help="A model retrained without exactly the forget classes (obliviate forget ORIGINAL --method retrain).")] = None,
    retrain: Annotated[bool, typer.Option("--retrain", help="Retrain the reference now with the model's own recipe (cached by the original's hash, the classes and the seed).")] = False,
    retrain_epochs: Annotated[Optional[int], typer.Option(help="Retrain the reference for this many epochs instead of the recipe's (implies --retrain; a cheaper, rougher look, cached apart).", min=1, max=10**6)] = None,
    original: Annotated[Optional[Path], typer.Option(help="The model before forgetting: sets the relearn-time goal; the reference when no retrained one is given (gaps are then to the original).")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="Dataset (default: the model's).")] = None,
    forget_classes: Annotated[Optional[str], typer.Option(help="Default: the model's forgotten classes.")] = None,
    shots: Annotated[str, typer.Option(help="Samples per class of the prototype attack, comma-separated.")] = "1,10",
    kr_shots: Annotated[str, typer.Option(help="Samples per class of the KR probes, comma-separated; 'all' adds the whole training split (minutes on Fashion-MNIST; the verdict reads k=10 and k=100).")] = "10,100",
    relearn_steps: Annotated[int, typer.Option(help="Relearn-probe steps (0 skips RE).", min=0, max=10**7)] = 1000,
    relearn_max_steps: Annotated[int, typer.Option(help="Step budget of the relearn-time fine-tune (0 skips it).", min=0, max=10**6)] = 300,
    seed: Annotated[int, typer.Option(help="Seed of the attacks' draws.", min=0, max=2**31 - 1)] = 0,
    shadows: Annotated[int, typer.Option(help="Class-level U-LiRA: this many shadow originals (trained with the original's recipe, then forgotten as the model was) and as many shadow retrains, cached like the reference; 0 skips it; 8 is a start. Needs --original.", min=0, max=1000)] = 0,
    retrain_twice: Annotated[bool, typer.Option("--retrain-twice", help="Also retrain with another seed (cached): its row and gaps show what 'as retraining' looks like on each measure.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the report as JSON here.")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Write a bar chart (PNG) here.")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Where --retrain caches references and --shadows its shadows (default ~/.cache/obliviate/references).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Where the dataset files are.")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu or cuda (default: cuda when available).")] = None,
    overwrite: Overwrite = False,
) -> None:
    """Is the forget deep? Attacks from an attacker's best start, against a model retrained
    without the classes, judged in a band on both sides; one table (and --plot, --out).

    In the verdict: KR k=10 and k=100 (a fresh linear head fitted to convergence on the frozen
    penultimate features of 10 or 100 training samples per class; also at earlier blocks);
    Spotter (5 samples' prototype blended into the forget row); the prototype attack (nearest
    class mean, k=10); the forget-class MIA (the class's training vs test samples, AUC);
    relearn time from re-initialised forget rows; agreement and JS to the reference, no
    farther than the output-only forget's; U-LiRA with --shadows. A gap outside its band on
    either side fails: shallower than retraining, or beyond it. Shown, not judged: the
    paper's RE and MIA-efficacy."""
    from obliviate.evidence import EvidenceConfig
    from obliviate.metrics import RelearnConfig

    if dataset is not None:
        check_dataset(dataset)
    retrain = retrain or retrain_epochs is not None
    if reference is not None and retrain:
        raise ObliviateError("give either --reference FILE or --retrain (--retrain-epochs), "
                             "not both")  # fmt: skip
    if plot is not None and plot.suffix.lower() != ".png":
        raise ObliviateError(f"--plot writes a PNG; give a path ending in .png, not {plot.name}")
    check_outputs([out, plot], [model_file, reference, original], overwrite=overwrite)
    shot_list = csv_ints(shots, "shots")
    if shadows and original is None:
        raise ObliviateError("--shadows trains shadows with the original's recipe: give the "
                             "model before forgetting with --original FILE")  # fmt: skip
    words = [k.strip() for k in kr_shots.split(",") if k.strip()]
    if not words or not all(k == "all" or k.isdigit() for k in words):
        raise ObliviateError(f"--kr-shots takes comma-separated integers or 'all', got {kr_shots!r}")
    kr_list = tuple(None if k == "all" else int(k) for k in words)
    config = EvidenceConfig(shots=shot_list, relearn=RelearnConfig(steps=relearn_steps, seed=seed),
                            relearn_max_steps=relearn_max_steps, seed=seed, shadows=shadows,
                            kr_shots=kr_list)  # fmt: skip
    bundle = load(model_file)
    ref = load(reference) if reference is not None else None
    orig = load(original) if original is not None else None
    classes = parse_classes(forget_classes, bundle) if forget_classes is not None else None
    report = references.depth_evidence(
        bundle, ref, dataset, classes, original=orig, retrain=retrain,
        retrain_epochs=retrain_epochs, config=config, cache_dir=cache_dir, data_dir=data_dir,
        device=device, retrain_twice=retrain_twice,
    )  # fmt: skip
    payload = report.to_dict()
    if out is not None:
        write_json_atomic(out, payload)
    if plot is not None:
        from obliviate.evidence import plot_evidence

        plot_evidence(report, plot, title=model_file.name)
    if json_out:
        print(json.dumps(payload, indent=2))
        return
    console.print(evidence_table(report, model_file.name), soft_wrap=True)
    for line in describe_evidence(report):
        console.print(line, highlight=False, soft_wrap=True)
