"""Training on several processes (DistributedDataParallel), with the single-process code unchanged.

    torchrun --nproc_per_node 2 -m ldm_mini train-ldm --steps 100      # 2 processes on one machine

How data parallelism works: every process (a *rank*) holds a full copy of the model and computes
the loss on its own share of the batch; after backward, DDP averages the gradients across ranks
(an all-reduce, overlapped with the backward pass), so every rank takes the same optimiser step
and the copies stay identical. Here the *global* batch stays ``TrainConfig.batch_size``, split
over the ranks: a recipe means the same thing on 1 or N processes, it just runs faster.

Backends: "gloo" on CPUs, "nccl" on CUDA GPUs. torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and the
rendezvous address in the environment; ``setup()`` reads them. Only rank 0 writes checkpoints,
logs and progress bars (``is_main()``), so N processes do not overwrite each other's files.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True on rank 0 (and in a plain single-process run): the one process that writes files."""
    return rank() == 0


def setup() -> bool:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); a no-op otherwise.

    Returns True when running distributed. On CUDA each rank takes the GPU LOCAL_RANK.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or is_distributed():
        return is_distributed()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)
    return True


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def main_process_first():
    """Rank 0 runs the block first (e.g. draws the dataset and writes its cache), the others wait
    and then run it (reading the cache): N processes never write the same file at once."""
    if is_distributed() and not is_main():
        dist.barrier()
    yield
    if is_distributed() and is_main():
        dist.barrier()


def rank_generator(shared: torch.Generator) -> torch.Generator:
    """A generator for this rank's own random draws (noise, t, caption dropout), derived from the shared one.

    Every rank draws the same seed from `shared` (so its state stays identical on all ranks, and a
    resumed run continues exactly), then offsets it by the rank (so ranks draw different noise).
    """
    seed = int(torch.randint(2**62, (1,), generator=shared))
    return torch.Generator().manual_seed(seed + rank())
