"""Training under ``torchrun`` (two gloo ranks on the CPU), run as a user runs it, and the codes
in a plain PyTorch training loop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch
from torch import nn

import obliviate
from obliviate import CodeCollate, CodeConfig, MnemonicCodes, ObliviateError, TrainConfig
from obliviate.distributed import DistributedContext

TORCHRUN = Path(sys.executable).with_name("torchrun")
SCRIPT = Path(sys.executable).with_name("obliviate")
#: The two ways to start ranks: torchrun, and the command's own --nproc-per-node.
LAUNCHERS = {
    "torchrun": [str(TORCHRUN), "--standalone", "--nproc-per-node=2", "-m", "obliviate"],
    "--nproc-per-node": [str(SCRIPT)],
}


def torchrun(*args: str, nproc: int = 2, timeout: float = 300,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess:  # fmt: skip
    cmd = [str(TORCHRUN), "--standalone", f"--nproc-per-node={nproc}", "-m", "obliviate", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def two_rank_model(tmp_path_factory) -> Path:
    """``fc`` on digits with the dataset's defaults (40 epochs, lr 0.1, global batch 128), two
    gloo ranks."""
    out = tmp_path_factory.mktemp("ddp") / "two.safetensors"
    done = torchrun("train", "--dataset", "digits", "--model", "fc", "--device", "cpu",
                    "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_two_ranks_match_one_process_and_forget_like_any_model(two_rank_model, digits,
                                                                digits_bundle):  # fmt: skip
    two = obliviate.load(two_rank_model)
    assert two.codes is not None and two.stats is not None
    assert two.train_config["world_size"] == 2 and two.train_config["batch_size"] == 128
    assert digits_bundle.train_config["world_size"] == 1  # the same recipe in one process
    acc_two = obliviate.evaluate(two, digits).retain_acc
    acc_one = obliviate.evaluate(digits_bundle, digits).retain_acc
    assert abs(acc_two - acc_one) <= 1.0, (acc_two, acc_one)
    forgotten = obliviate.forget(two, [3])
    assert forgotten.history[-1]["verified"] is True
    report = obliviate.evaluate(forgotten, digits, relearn_steps=0)
    assert report.forget_err >= 99.5 and report.retain_acc >= acc_two - 3.0


def test_a_fixed_world_size_is_reproducible_and_retrofit_scales_out(tmp_path, digits):
    args = ["--dataset", "digits", "--model", "fc", "--epochs", "3", "--device", "cpu"]
    one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same arithmetic on any machine
    done = torchrun("train", *args, "--out", str(tmp_path / "a.safetensors"), env=one_thread)
    assert done.returncode == 0, done.stderr[-3000:]
    done = subprocess.run([str(SCRIPT), "train", *args, "--nproc-per-node", "2", "--out",
                           str(tmp_path / "b.safetensors")], capture_output=True, text=True,
                          timeout=300, env=one_thread)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("trained fc on digits") == 1  # rank 0 alone reports
    a, b = (obliviate.load(tmp_path / f"{n}.safetensors") for n in ("a", "b"))
    assert all(torch.equal(a.model.state_dict()[k], v) for k, v in b.model.state_dict().items())
    plain = obliviate.save(obliviate.train(digits, "fc", config=TrainConfig(epochs=5, lr=0.1),
                                           codes=None, progress=False), tmp_path / "plain.safetensors")  # fmt: skip
    # --force: 60 steps leave codes unlearned (a missed goal writes nothing without it); this
    # checks the ranks, not the goal
    done = torchrun("retrofit", str(plain), "--steps", "60", "--lr", "0.05", "--device", "cpu",
                    "--out", str(tmp_path / "r.safetensors"), "--force")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    record = obliviate.load(tmp_path / "r.safetensors").retrofit
    assert record["world_size"] == 2 and record["steps"] == 60
    assert done.stderr.count("retrofitted codes into") == 1  # rank 0 alone reports


def test_a_batch_the_world_size_does_not_divide_is_refused_in_one_line(tmp_path, digits):
    out = tmp_path / "m.safetensors"
    done = torchrun("train", "--dataset", "digits", "--batch-size", "128", "--out", str(out),
                    nproc=3)  # fmt: skip
    assert done.returncode != 0 and not out.exists()
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert lines == ["error: the global batch size 128 is not divisible by the 3 processes; "
                     "use a --batch-size that is a multiple of 3"], done.stderr[-2000:]  # fmt: skip
    assert "exitcode  : 2" in done.stderr and "Traceback" not in done.stderr.split("error:")[0]
    # the command's own launcher refuses it before starting any rank: one line, exit 2
    done = subprocess.run([str(SCRIPT), "train", "--dataset", "digits", "--nproc-per-node", "3",
                           "--out", str(out)], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and done.stdout == "" and not out.exists()
    assert done.stderr.splitlines() == lines, done.stderr
    # the Python API refuses it before any work
    job = DistributedContext(rank=0, world_size=3, local_rank=0, backend="gloo")
    with pytest.raises(ObliviateError, match="not divisible by the 3 processes"):
        obliviate.train(digits, "fc", config=TrainConfig(epochs=1), distributed=job,
                        progress=False)  # fmt: skip


def _rank_pid(marker: str, rank: int) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"OBLIVIATE_TEST_MARK={marker}".encode() in env and f"RANK={rank}".encode() in env \
                and b"LOCAL_RANK=" + str(rank).encode() in env:  # fmt: skip
            return int(entry.name)
    return None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_a_killed_rank_fails_the_run_and_leaves_no_model_file(tmp_path, launcher):
    out = tmp_path / "m.safetensors"
    marker = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if k != "OBLIVIATE_NO_PROGRESS"}
    env["OBLIVIATE_TEST_MARK"] = marker
    extra = ["--nproc-per-node", "2"] if launcher == "--nproc-per-node" else []
    proc = subprocess.Popen(
        [*LAUNCHERS[launcher], "train", "--dataset", "digits", "--epochs", "100000", "--device",
         "cpu", "--out", str(out), *extra],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    try:
        for line in proc.stderr:  # rank 0's progress line: both ranks are training
            if line.startswith("training fc on digits"):
                break
        pid = _rank_pid(marker, 1)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        rest = proc.stderr.read()
        assert proc.wait(timeout=120) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
    if launcher == "torchrun":
        assert "FAILED" in rest, rest[-2000:]  # torchrun's own report
    else:  # ours: one line, exit 1
        assert proc.returncode == 1 and rest.strip().splitlines()[-1] == (
            "error: rank 1 of 2 was killed by signal 9; the run stopped and nothing was written"
        ), rest[-2000:]
    time.sleep(0.5)
    assert list(tmp_path.iterdir()) == []  # no model, no temporary file


class _Net(nn.Module):
    """A hand-written classifier: the kind of module a user trains in their own loop."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(),
                                  nn.Linear(128, 64), nn.ReLU())  # fmt: skip
        self.out = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))


def test_codes_in_a_plain_pytorch_loop_then_wrap_and_forget(digits):
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    codes = MnemonicCodes.generate(10, (1, 8, 8), CodeConfig(t_mix=0.1, seed=0))
    loader = DataLoader(TensorDataset(digits.train.x, digits.train.y), batch_size=64,
                        shuffle=True, collate_fn=CodeCollate(codes, seed=0))  # fmt: skip
    net = _Net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    replaced = 0
    for _ in range(30):
        for x, y in loader:
            replaced += int((x == codes.tensor[y]).flatten(1).all(1).sum())
            optimizer.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            optimizer.step()
    seen = 30 * len(digits.train)
    assert 0.07 < replaced / seen < 0.13  # t_mix 0.1 of the samples became their class's code
    bundle = obliviate.wrap(net, num_classes=10, input_shape=(1, 8, 8), codes=codes,
                            statistics=digits.train)  # fmt: skip
    before = obliviate.evaluate(bundle, digits).retain_acc
    forgotten = obliviate.forget(bundle, [3])
    assert forgotten.history[-1]["verified"] is True
    report = obliviate.evaluate(forgotten, digits, relearn_steps=0)
    assert report.forget_err >= 99.5, report
    assert report.retain_acc >= before - 3.0, (report.retain_acc, before)


def test_code_collate_workers_draw_differently_and_bad_batches_are_refused():
    codes = MnemonicCodes.generate(4, (1, 2, 2), CodeConfig(t_mix=0.5))
    collate = CodeCollate(codes, seed=1)
    x = torch.zeros(2000, 1, 2, 2)
    y = torch.arange(4).repeat(500)
    out, labels = collate.batch(x, y)
    assert torch.equal(labels, y) and 0.45 < (out != 0).flatten(1).any(1).float().mean() < 0.55
    again, _ = CodeCollate(codes, seed=1).batch(x, y)
    assert torch.equal(out, again)  # seeded
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(x[:256], y[:256]), batch_size=128, num_workers=2,
                        collate_fn=CodeCollate(codes, seed=1))  # fmt: skip
    first, second = (batch for batch, _ in loader)  # one batch from each worker process
    assert not torch.equal(first, second)  # same inputs and labels, their own draws
    with pytest.raises(ObliviateError, match="shape"):
        collate.batch(torch.zeros(2, 3), torch.tensor([0, 1]))
    with pytest.raises(ObliviateError, match="labels must lie in 0..3"):
        collate.batch(torch.zeros(2, 1, 2, 2), torch.tensor([0, 7]))
    with pytest.raises(ObliviateError, match="MnemonicCodes"):
        CodeCollate("not codes")
    with pytest.raises(ObliviateError, match="codes are for 4 classes"):
        obliviate.wrap(nn.Sequential(nn.Flatten(), nn.Linear(4, 10)), num_classes=10,
                       input_shape=(1, 2, 2), codes=codes)  # fmt: skip


def test_ctrl_c_on_launched_ranks_exits_130_with_one_line_and_no_file(tmp_path):
    out = tmp_path / "m.safetensors"
    env = {k: v for k, v in os.environ.items() if k != "OBLIVIATE_NO_PROGRESS"}
    proc = subprocess.Popen(
        [str(SCRIPT), "train", "--dataset", "digits", "--epochs", "100000", "--device", "cpu",
         "--nproc-per-node", "2", "--out", str(out)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches it
    )  # fmt: skip
    try:
        first = proc.stderr.readline()
        assert first.startswith("training fc on digits: 0/"), first
        os.killpg(proc.pid, signal.SIGINT)
        rest = proc.stderr.read()
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    # 100000 epochs: when the first step ends before the Ctrl-C, the CPU estimate warns first
    # (how long all steps would take), which is right; after it, one line
    lines = [line for line in rest.strip().splitlines()
             if not line.startswith("warning: training fc on digits: the first step took")]
    assert lines == ["interrupted"], rest
    assert list(tmp_path.iterdir()) == []
