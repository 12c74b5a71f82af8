"""train_diffusion under torchrun with 2 CPU processes (gloo): the copies stay identical, only rank 0 writes."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with gloo")
def test_two_processes_keep_identical_weights_and_only_rank0_writes(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(ROOT / "tests" / "ddp_worker.py"), str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert r0["world"] == r1["world"] == 2
    # the ranks started from different random weights and saw different halves of each batch ...
    assert r0["losses"] != r1["losses"]
    # ... yet after 4 steps every weight (and the EMA copied into the model) is bit-for-bit the same
    assert r0["state"].keys() == r1["state"].keys()
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    assert (tmp_path / "ckpt-rank0" / "state.safetensors").exists()
    assert not (tmp_path / "ckpt-rank1").exists() or not any((tmp_path / "ckpt-rank1").iterdir())
