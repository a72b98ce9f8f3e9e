import pytest
import torch
from torch import nn

from obliviate import ObliviateError, create_model
from obliviate.fisher import FISHER_FLOOR, diagonal_fisher


def naive_fisher(model, x, y, classes):
    """Reference: one backward call per sample, squared grads summed, floor, divided."""
    sums = {n: torch.full_like(p, FISHER_FLOOR) for n, p in model.named_parameters()}
    count = 0
    model.eval()
    for xi, yi in zip(x, y):
        if int(yi) not in classes:
            continue
        model.zero_grad()
        nn.functional.cross_entropy(model(xi.unsqueeze(0)), yi.unsqueeze(0)).backward()
        for n, p in model.named_parameters():
            sums[n] += p.grad.detach() ** 2
        count += 1
    return {n: s / count for n, s in sums.items()}


@pytest.mark.parametrize("arch", ["fc", "cnn", "hardtanh-mlp"])  # rank-one and vmap paths
def test_vectorised_fisher_matches_naive_loop(arch):
    torch.manual_seed(0)
    model = create_model(arch, input_shape=(1, 8, 8), num_classes=5)
    x = torch.rand(13, 1, 8, 8)
    y = torch.randint(0, 5, (13,))
    y[:2] = torch.tensor([0, 1])
    groups = [[0, 1], [2, 3, 4]]
    got = diagonal_fisher(model, x, y, groups, chunk_size=4)
    for gi, classes in enumerate(groups):
        ref = naive_fisher(model, x, y, classes)
        for name in ref:
            torch.testing.assert_close(got[gi][name], ref[name], rtol=1e-4, atol=1e-12)


def test_fisher_leaves_model_untouched_and_in_its_mode():
    model = create_model("fc", input_shape=(4,), num_classes=3, hidden=5).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    diagonal_fisher(model, torch.rand(3, 4), torch.tensor([0, 1, 2]), [[0], [1, 2]])
    assert model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_nan_weights_give_a_clear_error():
    model = create_model("fc", input_shape=(4,), num_classes=3, hidden=5)
    with torch.no_grad():
        model.hidden.weight[0, 0] = float("nan")
    with pytest.raises(ObliviateError, match="NaN/inf"):
        diagonal_fisher(model, torch.rand(3, 4), torch.tensor([0, 1, 2]), [[0], [1, 2]])


def test_group_without_samples_is_an_error():
    model = create_model("fc", input_shape=(4,), num_classes=3, hidden=5)
    with pytest.raises(ObliviateError, match="no sample"):
        diagonal_fisher(model, torch.rand(2, 4), torch.tensor([0, 1]), [[0], [2]])
