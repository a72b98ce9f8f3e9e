"""Training on several processes with ``torchrun`` and DistributedDataParallel.

``torchrun --nproc-per-node N -m obliviate train ...`` (or ``retrofit``) starts N copies of the
command. Each reads ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` from its environment
(:func:`from_environment`), joins the process group (NCCL on GPUs, gloo on CPU) and trains its
shard of every global batch:

- every rank draws the same permutation of the training set (the run's seed), cuts each global
  batch of ``batch_size`` samples into ``world_size`` equal slices and trains its own slice;
  DDP averages the gradients, so one step sees the same samples as a single-process step
  (but for an epoch's last batch, whose remainder after dividing by the world size, fewer than
  ``world_size`` samples, is left out);
- the code replacement (and image augmentation) of a slice draws from a generator seeded by
  ``(seed, rank, step)``: a run is reproducible for a fixed world size;
- rank 0 alone evaluates and writes the model file (atomically: a temporary file, then a
  rename); the other ranks return once training is done.

``obliviate train --nproc-per-node N`` (and ``retrofit``) starts the N ranks itself on one
machine through torchrun's launcher (:func:`launch`) and sums up a failure in one line.

Forgetting is not distributed: it takes milliseconds and needs only the codes.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch

from obliviate.errors import ObliviateError


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in a ``torchrun`` job.

    Attributes:
        rank: this process's index, ``0 .. world_size - 1``.
        world_size: the number of processes.
        local_rank: its index on this machine (which GPU it uses).
        backend: ``"nccl"`` (GPUs) or ``"gloo"`` (CPU).
    """

    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that evaluates, reports and writes files."""
        return self.rank == 0

    def device(self) -> torch.device:
        """This rank's device: its own GPU under NCCL, else the CPU."""
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")

    def shard(self, index: torch.Tensor) -> torch.Tensor:
        """This rank's slice of one global batch (``world_size`` near-equal contiguous parts)."""
        return index.tensor_split(self.world_size)[self.rank]

    def generator(self, seed: int, step: int) -> torch.Generator:
        """The generator of this rank's augmentation draws at ``step``."""
        mixed = hash((int(seed), self.rank, int(step))) & 0x7FFF_FFFF_FFFF_FFFF
        return torch.Generator().manual_seed(mixed)

    def record(self) -> dict[str, object]:
        """What the audit record keeps of the job."""
        return {"world_size": self.world_size, "backend": self.backend}


def from_environment() -> DistributedContext | None:
    """The ``torchrun`` job this process belongs to, or None for a plain single process.

    Raises:
        ObliviateError: the ``torchrun`` variables are malformed.
    """
    world = os.environ.get("WORLD_SIZE")
    if world is None or world == "1":
        return None
    try:
        world_size = int(world)
        rank = int(os.environ["RANK"])
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
    except (KeyError, ValueError):
        raise ObliviateError("WORLD_SIZE is set but RANK/LOCAL_RANK are missing or not "
                             "integers; start distributed runs with torchrun") from None  # fmt: skip
    if not 0 <= rank < world_size:
        raise ObliviateError(f"RANK {rank} is outside 0..{world_size - 1}")
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank,
                              backend="nccl" if torch.cuda.is_available() else "gloo")  # fmt: skip


def check_batch(batch_size: int, context: DistributedContext | int | None) -> None:
    """Refuse a global batch that the world size (a context, or a number of processes) does not
    divide: every rank trains an equal slice of it."""
    world = context.world_size if isinstance(context, DistributedContext) else context
    if world is not None and world > 1 and batch_size % world:
        raise ObliviateError(
            f"the global batch size {batch_size} is not divisible by the {world} "
            f"processes; use a --batch-size that is a multiple of {world}"
        )


def launch(args: list[str], nproc: int) -> int:
    """Run ``python -m obliviate ARGS`` as ``nproc`` ranks on this machine (what ``torchrun
    --standalone --nproc-per-node NPROC -m obliviate ARGS`` does) and return the exit code.

    The ranks print their own output. A failed run is summed up in one line instead of the
    launcher's report: 2 when every rank stopped on the same usage error (rank 0 printed it),
    130 on Ctrl-C, 1 otherwise (a rank crashed or was killed; nothing was written).
    """
    import logging
    import sys
    import uuid

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if nproc < 2:
        raise ObliviateError(f"--nproc-per-node must be >= 2 to launch ranks, got {nproc}")
    threads = max(1, (os.cpu_count() or 1) // nproc)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))  # the ranks inherit it
    os.environ["OBLIVIATE_LAUNCHER"] = "1"  # the ranks leave Ctrl-C to this process to report
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc,
                          run_id=uuid.uuid4().hex, rdzv_backend="c10d",
                          rdzv_endpoint="localhost:0", max_restarts=0,
                          monitor_interval=0.1)  # fmt: skip
    # the launcher's logs (its failure report, "Received 2 death signal") give way to one line
    quiet = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
             if name.startswith("torch.distributed")]  # fmt: skip
    quiet.append(logging.getLogger("torch.distributed.elastic"))
    levels = [log.level for log in quiet]
    for log in quiet:
        log.setLevel(logging.CRITICAL)
    try:
        elastic_launch(config, sys.executable)("-m", "obliviate", *args)
    except ChildFailedError as exc:
        codes = {rank: failure.exitcode for rank, failure in exc.failures.items()}
        if set(codes.values()) == {2}:
            return 2  # a usage error: rank 0 has said it
        if set(codes.values()) <= {130, -2}:
            return 130
        rank, first = exc.get_first_failure()  # the root cause; the others were stopped after
        code = first.exitcode
        how = (f"was killed by signal {-code}" if code < 0 else f"exited with code {code}")
        print(f"error: rank {rank} of {nproc} {how}; the run stopped and nothing was written",
              file=sys.stderr)  # fmt: skip
        return 1
    except (SignalException, KeyboardInterrupt):
        return 130
    finally:
        for log, level in zip(quiet, levels):
            log.setLevel(level)
    return 0


def init(context: DistributedContext, timeout_s: float = 300.0) -> None:
    """Join the process group (idempotent). ``timeout_s`` bounds every collective, so a rank
    left waiting for a dead peer fails instead of hanging."""
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if context.backend == "nccl":
        torch.cuda.set_device(context.local_rank)
    dist.init_process_group(backend=context.backend,
                            timeout=datetime.timedelta(seconds=timeout_s))  # fmt: skip


def shutdown() -> None:
    """Leave the process group, if this process joined one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def current() -> DistributedContext | None:
    """The job's context once :func:`init` has run in this process, else None."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    return from_environment()
