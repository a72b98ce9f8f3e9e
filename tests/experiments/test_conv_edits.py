"""The step edits of ``obliviate.experiments.conv_edits`` (issue 35's probes) do what their doc
says: each forget image's features move toward its own target, the kept images' much less."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch

from obliviate.experiments.conv_edits import _feature_steps, _network_steps
from obliviate.models import MODELS


@pytest.fixture
def setting():
    torch.manual_seed(0)
    model = MODELS.get("cnn")(input_shape=(1, 8, 8), num_classes=3, width=4).eval()
    subset = SimpleNamespace(x=torch.randn(30, 1, 8, 8), y=torch.arange(3).repeat(10))
    is_forget = subset.y == 0

    def copy_of():
        out = copy.deepcopy(model).eval()
        return out, dict(out.named_modules())

    with torch.no_grad():
        h0 = model.features(subset.x)
        logits = model(subset.x)
    nearest = torch.tensor([1, 2])[logits[:, [1, 2]].argmax(1)]
    means = torch.stack([h0[subset.y == c].mean(0) for c in range(3)])
    goal = means[nearest[is_forget]]  # pull 1: all the way to the nearest kept class's mean
    return model, subset, is_forget, copy_of, h0, goal


def _moves(edited, subset, is_forget, h0, goal):
    with torch.no_grad():
        h = edited.features(subset.x)
    to_goal = lambda f: float((f[is_forget] - goal).norm(dim=1).mean())  # noqa: E731
    kept_move = float((h[~is_forget] - h0[~is_forget]).norm(dim=1).mean())
    forget_move = float((h[is_forget] - h0[is_forget]).norm(dim=1).mean())
    return to_goal(h0), to_goal(h), forget_move, kept_move


def test_network_steps_pull_forget_features_to_their_targets(setting):
    model, subset, is_forget, copy_of, h0, goal = setting
    grid = dict(_network_steps(model, subset, is_forget, [1, 2], 3, copy_of))
    edited = grid["all layers steps 20 lambda 10 pull 1"]
    before, after, forget_move, kept_move = _moves(edited, subset, is_forget, h0, goal)
    assert after < 0.9 * before  # toward the targets (red with the pull's sign flipped)
    assert kept_move < forget_move
    assert torch.equal(edited.classifier.weight, model.classifier.weight)  # head untouched
    assert not torch.equal(edited.body[0].weight, model.body[0].weight)  # every layer moves
    # the anchor's weight holds the kept images: three times it, under half the move (the
    # two settings move alike when the anchor is dropped from the loss)
    held = [_moves(grid[f"all layers steps 50 lambda {lam} pull 1"], subset, is_forget, h0,
                   goal)[3] for lam in (10, 30)]  # fmt: skip
    assert held[1] < 0.5 * held[0]


def test_feature_steps_move_only_the_named_layer(setting):
    model, subset, is_forget, copy_of, h0, goal = setting
    x = subset.x.reshape(-1, 1, 8, 8)
    with torch.no_grad():
        inputs = model.body[:3](x)
    label, edited = next(_feature_steps(model, "body.3", inputs, subset, is_forget, [1, 2], 3,
                                        copy_of))  # fmt: skip
    assert label.startswith("body.3 steps 50")
    before, after, forget_move, kept_move = _moves(edited, subset, is_forget, h0, goal)
    assert after < before and kept_move < forget_move
    assert torch.equal(edited.body[0].weight, model.body[0].weight)


def test_the_redirect_grid_edits_the_named_layers_in_turn():
    """On a ResNet: the feature layer without and with its shortcut, then each stage's last
    block; every listed layer changes and no other."""
    from obliviate.experiments.conv_edits import _redirects

    torch.manual_seed(0)
    model = MODELS.get("resnet18")(input_shape=(1, 8, 8), num_classes=3, width=2).eval()
    subset = SimpleNamespace(x=torch.randn(30, 1, 8, 8), y=torch.arange(3).repeat(10))

    def copy_of():
        out = copy.deepcopy(model).eval()
        return out, dict(out.named_modules())

    grid = dict(_redirects(model, subset, [0], [1, 2], 3, copy_of))
    stages = [f"backbone.layer{i}.1.conv2" for i in range(1, 5)]
    assert list(grid) == ["branch only: backbone.layer4.1.conv2",
                          "with shortcut: backbone.layer4.1.conv2",
                          f"last two: {', '.join(stages[-2:])}", f"every one: {', '.join(stages)}"]
    before = dict(model.named_parameters())
    for label, edited in grid.items():
        changed = {n.rsplit(".", 1)[0] for n, p in edited.named_parameters()
                   if not torch.equal(p, before[n])}
        assert changed == set(label.split(": ")[1].split(", ")), label
    branch, full = (grid[k].backbone.layer4[1].conv2.weight for k in list(grid)[:2])
    assert not torch.allclose(branch, full)
