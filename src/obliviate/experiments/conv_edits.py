"""Probes for issue 35: can a closed-form edit of a conv net's layers, computed *with data*, move
a forgotten class as far as retraining does (KR and prototype at k = 10 near the retrained
model's, kept classes intact)? Before any statistics are stored for such an edit, this asks
whether the edit itself works::

    python scripts/conv_edits.py --model runs/depth/models/convnet-s0.safetensors \\
        --references runs/depth/references --classes 0 --edit per-sample

The model is a ``scripts/depth.py`` suite model and its reference is the one ``depth.py``
cached (found by its recipe in ``--references``; never trained here). Every edit is computed
from ``--samples`` training images per class (the layer inputs of the images), applied to a
copy of the model, and measured like the depth page: KR at k = 10 on the penultimate features
and one block earlier, the prototype attack at k = 10, and A_R with the forget classes' logits
masked (the truncated model: the head is not edited here). One line per setting of the edit's
grid, after the original and the retrained model.

Edits (``--edit``), each at ``--layers`` (default: every convolution):

mean-projection
    Per layer, the forget classes' mean input minus the kept classes', as a unit direction
    ``d`` over the input *channels*; every kernel tap loses its response to ``d``
    (``W <- W - beta W d d^T``), centred so inputs at the kept mean keep their output (the bias
    takes the difference). Grid: ``beta`` per layer, small early and large deep (after DAMP,
    arXiv 2604.15166, as we read its abstract).
kodge
    After Kodge et al. (arXiv 2312.00761) on the channel vectors of every position: the SVD of
    the kept and of the forget inputs, importance-scaled into ``M_r`` and ``M_f``, and
    ``W <- W (I - (M_f - M_f M_r))``. Grid: the scaling ``alpha`` of each side.
generalized-eigen
    On unfolded patches: the top-k solutions of ``S_f w = lambda S_r w`` (the forget classes'
    second moment about the kept mean against the kept covariance), removed by the projection
    that keeps the kept mean. Grid: k.
per-sample
    On unfolded patches of one layer (the last by default): each forget image's pre-activation
    moves by ``gamma`` times the gap from its class's mean patch to the mean patch of *its own*
    nearest kept class (the original model's top kept class for it), the change of weights
    being the ridge solution that fits those moves on the forget patches while a ``lambda``
    penalty keeps the kept patches' outputs (after SCAR, arXiv 2404.12922, whose targets are
    per sample). Grid: ``gamma``, ``lambda``, and one shared target for comparison.
output-eigen
    On the *output* channels of one layer (the last by default): the top-k solutions of
    ``S_f w = lambda S_r w`` over the layer's pre-activation channel vectors (``pos``: every
    position's; ``img``: each image's spatial mean), ``S_f`` the forget classes' second moment
    about the kept mean and ``S_r`` the kept covariance; every position's pre-activation loses
    its component along them by the oblique projector ``Q = S_r W_k W_k^T``, folded into the
    weights (``W <- (I - Q) W``, the bias keeping the kept mean). The forget class's
    distinctive directions, where the kept classes vary least. Grid: k and the two kinds.

feature-steps
    A handful of Adam steps (lr 1e-3) on one layer (the last by default), its input fixed: each
    forget image's penultimate features are pulled toward the mean features of *its own*
    nearest kept class (``pull`` of the way), the kept images' features held where they were
    (weight ``lambda``). Grid: steps, lambda, pull.
network-steps
    The same pull, but Adam (lr 1e-3) moves every parameter before the head, batch norm kept
    in eval mode: per-sample targets as in SCAR (arXiv 2404.12922), anchored by the kept
    images' features. Grid: steps, lambda, pull.

redirect
    The package's own edit (:func:`obliviate.deep.redirect`, the deep forget), its statistics
    recorded on the ``--samples`` images: at the model's feature layer, without and with the
    residual shortcut (a ResNet's last block), then at several layers, one after the other,
    each layer's statistics recorded on the model as edited so far (the last convolution of
    the last two blocks or stages, and of every one; a ResNet's blocks with an identity
    shortcut). The question: does a redirect at more than one layer take the class further out?

``docs/results/conv-edits.md`` holds the tables ``scripts/conv_edits.sh`` made (``--out``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

import obliviate
from obliviate import api
from obliviate.attacks import block_features, knowledge_retention
from obliviate.deep import apply_edit, record_layer_statistics, redirect
from obliviate.deep_layer import FeatureLayer, has_identity_shortcut, residual_layer
from obliviate.errors import ObliviateError
from obliviate.evidence import KR_L2, KR_MAX_ITER, prototype_accuracy
from obliviate.experiments.engine import markdown_table
from obliviate.references import retrained_reference_path

EDITS = ("mean-projection", "kodge", "generalized-eigen", "per-sample", "output-eigen",
         "feature-steps", "network-steps", "redirect")


@dataclass(frozen=True)
class ConvEditOptions:
    model: Path = field(default=Path("runs/depth/models/convnet-s0.safetensors"),
                        metadata={"type": Path})  # fmt: skip
    references: Path = field(default=Path("runs/depth/references"), metadata={"type": Path})
    classes: str = "0"
    edit: str = field(default="per-sample", metadata={"choices": EDITS})
    layers: str | None = field(default=None, metadata={"help": "comma-separated module names "
                                                       "(default: every convolution; "
                                                       "per-sample: the last)"})  # fmt: skip
    samples: int = 150
    seed: int = 0
    out: Path | None = field(default=None, metadata={
        "type": Path, "help": "also append the table, under a heading with its command, to "
                              "this Markdown file (docs/results/conv-edits.md)"})  # fmt: skip


def _measures(model: nn.Module, data, classes: list[int], seed: int) -> list[str]:
    maps = dict(block_features(model))  # a ResNet's pooling block is not listed again
    earlier = next((name for name in maps if name != "penultimate"), None)
    kr = knowledge_retention(model, data.train, data.test, classes, shots=10, seed=seed,
                             max_iter=KR_MAX_ITER, l2=KR_L2)  # fmt: skip
    kr_early = (knowledge_retention(model, data.train, data.test, classes, shots=10,
                                    features=maps[earlier], seed=seed, max_iter=KR_MAX_ITER,
                                    l2=KR_L2) if earlier else float("nan"))  # fmt: skip
    proto = prototype_accuracy(model, data.train, data.test, classes, shots=10, seed=seed)
    retain = [c for c in range(data.num_classes) if c not in classes]
    keep = ~torch.isin(data.test.y, torch.tensor(classes))
    with torch.no_grad():
        logits = torch.cat([model(data.test.x[i : i + 2048])
                            for i in range(0, len(data.test.x), 2048)])  # fmt: skip
    pred = torch.tensor(retain)[logits[:, retain].argmax(1)]
    a_r = 100.0 * float((pred[keep] == data.test.y[keep]).float().mean())
    return [f"{kr:.1f}", f"{kr_early:.1f}", f"{proto:.1f}", f"{a_r:.2f}"]


def _inputs(model: nn.Module, names: list[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    got: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())
    hooks = [modules[n].register_forward_pre_hook(
        lambda module, inp, n=n: got.__setitem__(n, inp[0].detach())) for n in names]  # fmt: skip
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return got


def _patches(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``[N, positions, d + 1]`` float64 unfolded patches with a trailing 1 (the bias)."""
    p = nn.functional.unfold(x, conv.kernel_size, padding=conv.padding, stride=conv.stride)
    p = p.permute(0, 2, 1).double()
    return torch.cat([p, torch.ones(*p.shape[:2], 1, dtype=p.dtype)], 2)


def _weight_matrix(conv: nn.Conv2d) -> torch.Tensor:
    return torch.cat([conv.weight.detach().reshape(conv.out_channels, -1),
                      conv.bias.detach()[:, None]], 1).double()  # fmt: skip


def _set_weight_matrix(conv: nn.Conv2d, matrix: torch.Tensor) -> None:
    with torch.no_grad():
        conv.weight.copy_(matrix[:, :-1].reshape(conv.weight.shape))
        conv.bias.copy_(matrix[:, -1])


def _channel_edit(conv: nn.Conv2d, projector: torch.Tensor, centre: torch.Tensor | None) -> None:
    """``W <- W (I - P)`` on the input channels of every tap; with ``centre``, the bias keeps the
    output of an input at ``centre``."""
    with torch.no_grad():
        w = conv.weight
        moved = torch.einsum("oikl,ij->ojkl", w, projector.to(w.dtype))
        if centre is not None:
            conv.bias += torch.einsum("oikl,i->o", moved, centre.to(w.dtype))
        w -= moved


def _variants(options: ConvEditOptions, model: nn.Module, data, classes: list[int]):
    """``(label, edited model)`` for every setting of the edit's grid."""
    retain = [c for c in range(data.num_classes) if c not in classes]
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ObliviateError("the model has no convolution to edit")
    names = options.layers.split(",") if options.layers else (
        convs[-1:] if options.edit in ("per-sample", "output-eigen", "feature-steps")
    else convs)  # fmt: skip
    subset = data.train.per_class_subset(options.samples, seed=options.seed + 1)
    is_forget = torch.isin(subset.y, torch.tensor(classes))
    inputs = _inputs(model, names, subset.x)

    def copy_of():
        out = copy.deepcopy(model).eval()
        return out, dict(out.named_modules())

    if options.edit == "mean-projection":
        for scale in ((0, 0, 1), (0, 0.5, 1), (0.25, 0.5, 1), (0.5, 1, 1)):
            out, modules = copy_of()
            for name, beta in zip(names, scale[-len(names):]):
                u = inputs[name].double().mean(dim=(2, 3))
                gap = u[is_forget].mean(0) - u[~is_forget].mean(0)
                d = gap / gap.norm()
                _channel_edit(modules[name], beta * torch.outer(d, d), u[~is_forget].mean(0))
            yield f"beta {list(scale[-len(names):])}", out
    elif options.edit == "kodge":
        for alpha_r, alpha_f in ((100, 3), (100, 30), (1000, 30), (30, 3)):
            out, modules = copy_of()
            for name in names:
                u = inputs[name].double().permute(0, 2, 3, 1)
                spaces = [_importance_space(u[side].reshape(-1, u.shape[-1]), alpha)
                          for side, alpha in ((~is_forget, alpha_r), (is_forget, alpha_f))]
                m_r, m_f = spaces
                _channel_edit(modules[name], m_f - m_f @ m_r, None)
            yield f"alpha_r {alpha_r} alpha_f {alpha_f}", out
    elif options.edit == "generalized-eigen":
        for k in (1, 4, 16, 48):
            out, modules = copy_of()
            for name in names:
                conv = modules[name]
                p = _patches(inputs[name], conv)[..., :-1]
                kept = p[~is_forget].reshape(-1, p.shape[-1])
                gone = p[is_forget].reshape(-1, p.shape[-1]) - kept.mean(0)
                s_r = torch.cov(kept.T, correction=0)
                s_r += 1e-3 * s_r.diagonal().mean() * torch.eye(len(s_r), dtype=s_r.dtype)
                lower_inv = torch.linalg.inv(torch.linalg.cholesky(s_r))
                _, vectors = torch.linalg.eigh(lower_inv @ (gone.T @ gone / len(gone))
                                               @ lower_inv.T)  # fmt: skip
                w_k = lower_inv.T @ vectors[:, -k:]  # S_r-orthonormal
                matrix = _weight_matrix(conv)
                change = matrix[:, :-1] @ s_r @ w_k @ w_k.T
                matrix[:, :-1] -= change
                matrix[:, -1] += change @ kept.mean(0)
                _set_weight_matrix(conv, matrix)
            yield f"k {k}", out
    elif options.edit == "feature-steps":
        yield from _feature_steps(model, names[-1], inputs[names[-1]], subset, is_forget, retain,
                                  data.num_classes, copy_of)  # fmt: skip
    elif options.edit == "network-steps":
        yield from _network_steps(model, subset, is_forget, retain, data.num_classes, copy_of)
    elif options.edit == "redirect":
        yield from _redirects(model, subset, classes, retain, data.num_classes, copy_of)
    elif options.edit == "output-eigen":
        for k, where in ((1, "pos"), (2, "pos"), (4, "pos"), (8, "pos"), (2, "img"), (4, "img")):
            out, modules = copy_of()
            for name in names:
                conv = modules[name]
                with torch.no_grad():
                    z = conv(inputs[name]).double()  # [N, C, H, W] pre-activations
                if where == "pos":
                    vec = z.permute(0, 2, 3, 1)  # every position's channel vector
                    kept = vec[~is_forget].reshape(-1, z.shape[1])
                    gone = vec[is_forget].reshape(-1, z.shape[1])
                else:
                    kept, gone = z[~is_forget].mean((2, 3)), z[is_forget].mean((2, 3))
                centre = kept.mean(0)
                s_r = torch.cov(kept.T, correction=0)
                s_r += 1e-3 * s_r.diagonal().mean() * torch.eye(len(s_r), dtype=s_r.dtype)
                g = gone - centre
                lower_inv = torch.linalg.inv(torch.linalg.cholesky(s_r))
                _, vectors = torch.linalg.eigh(lower_inv @ (g.T @ g / len(g)) @ lower_inv.T)
                w_k = lower_inv.T @ vectors[:, -k:]
                q = s_r @ w_k @ w_k.T  # oblique projector onto the forget directions
                a = torch.eye(len(q), dtype=q.dtype) - q
                matrix = _weight_matrix(conv)
                new = a @ matrix
                new[:, -1] += q @ centre
                _set_weight_matrix(conv, new)
            yield f"{name} k {k} ({where})", out
    else:
        name = names[-1]
        with torch.no_grad():
            logits = model(subset.x)
        nearest = torch.tensor(retain)[logits[:, retain].argmax(1)]
        for gamma, lam, shared in ((1, 10, False), (5, 10, False), (8, 10, False),
                                   (12, 10, False), (5, 3, False), (5, 3, True)):  # fmt: skip
            out, modules = copy_of()
            conv = modules[name]
            p = _patches(inputs[name], conv)
            means = torch.stack([p[subset.y == c].reshape(-1, p.shape[-1]).mean(0)
                                 for c in range(data.num_classes)])  # fmt: skip
            target = means[nearest[is_forget]]
            if shared:
                target = target.mean(0, keepdim=True).expand_as(target)
            move = gamma * ((target - means[subset.y[is_forget]]) @ _weight_matrix(conv).T)
            forget_p = p[is_forget].reshape(-1, p.shape[-1])
            kept_p = p[~is_forget].reshape(-1, p.shape[-1])
            moves = move[:, None, :].expand(-1, p.shape[1], -1).reshape(-1, move.shape[1])
            gram = forget_p.T @ forget_p + lam * (kept_p.T @ kept_p) * (len(forget_p) / len(kept_p))
            gram += 1e-6 * gram.diagonal().mean() * torch.eye(len(gram), dtype=gram.dtype)
            change = torch.linalg.solve(gram, forget_p.T @ moves).T
            _set_weight_matrix(conv, _weight_matrix(conv) + change)
            yield f"{name} gamma {gamma} lambda {lam}{' shared target' if shared else ''}", out


def _redirect_layer(model: nn.Module, name: str, shortcut: bool) -> FeatureLayer:
    """The deep forget's view of convolution ``name``: a residual block's last (a ResNet's
    ``conv2``) with its batch norm's scale, the block its shortcut when that is the identity and
    ``shortcut`` is set (:func:`obliviate.deep_layer.residual_layer`); a plain layer otherwise."""
    parent, _, leaf = name.rpartition(".")
    block = model.get_submodule(parent) if parent else None
    if leaf != "conv2" or block is None or not has_identity_shortcut(block):
        return FeatureLayer(name, torch.ones(model.get_submodule(name).out_channels))
    return residual_layer(name, block, block.bn2, shortcut=shortcut)


def _redirects(model, subset, classes, retain, num_classes, copy_of):
    """The grid of the ``redirect`` edit (module doc)."""
    last = model.feature_layer().name
    residual = [n for n, m in model.named_modules()
                if n.endswith(".conv2") and has_identity_shortcut(model.get_submodule(
                    n.rsplit(".", 1)[0]))]  # fmt: skip
    if residual:  # a ResNet: each stage's last block
        stages = [n for n in residual if n.split(".")[-2] == "1"]
    else:
        stages = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    plans = [("branch only", [last], False), ("with shortcut", [last], True),
             ("last two", stages[-2:], True), ("every one", stages, True)]
    for label, names, shortcut in plans:
        out, _ = copy_of()
        for name in names:
            layer = _redirect_layer(out, name, shortcut)
            stats = record_layer_statistics(out, layer, subset.x, subset.y, num_classes)
            apply_edit(out, layer, redirect(out, layer, stats, classes, retain))
        yield f"{label}: {', '.join(names)}", out


def _pull_targets(model, subset, retain, num_classes):
    """What the step edits pull toward: the subset's penultimate features, each image's nearest
    kept class (the original model's top kept class for it) and every class's mean features."""
    with torch.no_grad():
        logits = model(subset.x)
        h0 = model.features(subset.x)
    nearest = torch.tensor(retain)[logits[:, retain].argmax(1)]
    means = torch.stack([h0[subset.y == c].mean(0) for c in range(num_classes)])
    return h0, nearest, means


def _feature_steps(model, name, x, subset, is_forget, retain, num_classes, copy_of):
    """Adam on the layer ``name`` (its input ``x`` fixed): each forget image's penultimate
    features move toward its own nearest kept class's mean features (the original model's
    top kept class for it), the kept images' features held where they were."""
    h0, nearest, means = _pull_targets(model, subset, retain, num_classes)
    for steps, lam, pull in ((50, 10.0, 1.0), (200, 10.0, 1.0), (200, 30.0, 1.0), (200, 10.0, 0.5),
                             (500, 30.0, 1.0)):  # fmt: skip
        out, modules = copy_of()
        layer = modules[name]
        tail = _tail_after(out, name)
        goal = h0[is_forget] + pull * (means[nearest[is_forget]] - h0[is_forget])
        opt = torch.optim.Adam(layer.parameters(), lr=1e-3)
        for _ in range(steps):
            h = tail(layer(x))
            loss = ((h[is_forget] - goal) ** 2).sum(1).mean() + \
                lam * ((h[~is_forget] - h0[~is_forget]) ** 2).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        out.eval()
        yield f"{name} steps {steps} lambda {lam:g} pull {pull:g}", out


def _network_steps(model, subset, is_forget, retain, num_classes, copy_of):
    """Adam on every parameter before the head (batch norm in eval mode: its statistics stay):
    each forget image's penultimate features move toward the mean features of its own nearest
    kept class, the kept images' features held where they were (SCAR's per-sample targets,
    arXiv 2404.12922, with a feature-distillation anchor instead of its logit one)."""
    h0, nearest, means = _pull_targets(model, subset, retain, num_classes)
    scale = float((h0[~is_forget] ** 2).sum(1).mean())  # the loss in units of a feature's size
    for steps, lam, pull in ((20, 10.0, 1.0), (50, 10.0, 1.0), (100, 10.0, 1.0), (50, 30.0, 1.0),
                             (50, 10.0, 0.5), (100, 3.0, 1.0)):  # fmt: skip
        out, _ = copy_of()
        params = [p for n, p in out.named_parameters() if not n.startswith("classifier")]
        goal = h0[is_forget] + pull * (means[nearest[is_forget]] - h0[is_forget])
        opt = torch.optim.Adam(params, lr=1e-3)
        for _ in range(steps):
            h = out.features(subset.x)
            loss = (((h[is_forget] - goal) ** 2).sum(1).mean()
                    + lam * ((h[~is_forget] - h0[~is_forget]) ** 2).sum(1).mean()) / scale
            opt.zero_grad()
            loss.backward()
            opt.step()
        out.eval()
        yield f"all layers steps {steps} lambda {lam:g} pull {pull:g}", out


def _tail_after(model: nn.Module, name: str):
    """The function from ``name``'s output to the penultimate features (a module of one of
    the model's ``nn.Sequential`` blocks)."""
    block_name, index = name.rsplit(".", 1)
    block = dict(model.named_modules())[block_name]
    rest = list(block)[int(index) + 1:]
    blocks = [n for n, _ in model.named_children()]
    after = [dict(model.named_children())[n] for n in blocks[blocks.index(block_name) + 1:]
             if n != "classifier"]  # fmt: skip

    def tail(z):
        for module in [*rest, *after]:
            z = module(z)
        return z

    return tail


def _importance_space(rows: torch.Tensor, alpha: float) -> torch.Tensor:
    u, s, _ = torch.linalg.svd(rows.T, full_matrices=False)
    share = s**2 / (s**2).sum()
    return u @ torch.diag(alpha * share / ((alpha - 1) * share + 1)) @ u.T


def probe(options: ConvEditOptions) -> None:
    """Prints the table of the module doc."""
    torch.set_num_threads(1)
    bundle = obliviate.load(options.model)
    data = api.resolve_dataset(bundle.dataset)
    classes = [int(c) for c in options.classes.split("+")]
    path = retrained_reference_path(bundle, classes, data, seed=options.seed,
                                    cache_dir=options.references)  # fmt: skip
    if not path.exists():
        raise ObliviateError(f"no cached reference for classes {classes} in {options.references}"
                             " (scripts/depth.py run makes them)")  # fmt: skip
    reference = obliviate.load(path).model.eval()
    model = bundle.model.eval()
    rows = [["original", *_measures(model, data, classes, options.seed)],
            ["retrained", *_measures(reference, data, classes, options.seed)]]
    for label, edited in _variants(options, model, data, classes):
        rows.append([f"{options.edit}: {label}", *_measures(edited, data, classes, options.seed)])
        print(" | ".join(rows[-1]), flush=True)
    table = markdown_table(["model", "KR k=10", "KR k=10 one block earlier", "prototype k=10",
                            "A_R (forget logits masked)"], rows)  # fmt: skip
    print("\n".join(table))
    if options.out is not None:
        command = (f"python scripts/conv_edits.py --model {options.model} --references "
                   f"{options.references} --classes {options.classes} --edit {options.edit}"
                   + (f" --layers {options.layers}" if options.layers else "")
                   + (f" --samples {options.samples}" if options.samples != 150 else "")
                   + (f" --seed {options.seed}" if options.seed else ""))  # fmt: skip
        with open(options.out, "a") as page:
            page.write(f"\n### classes {options.classes}: {options.edit}\n\n`{command}`\n\n"
                       + "\n".join(table) + "\n")
