"""DDP through torchrun: two CPU processes (gloo) train like one process on the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

HERE = Path(__file__).parent


def test_two_processes_match_one_process_on_the_same_global_batch(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(HERE / "_ddp_job.py"),
        str(tmp_path),
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    w0, w1 = load_file(str(tmp_path / "rank0.safetensors")), load_file(str(tmp_path / "rank1.safetensors"))
    for name in w0:
        assert torch.equal(w0[name], w1[name]), f"ranks disagree on {name}"
    l0, l1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))

    sys.path.insert(0, str(HERE))
    try:
        import _ddp_job
    finally:
        sys.path.remove(str(HERE))
    single, losses = _ddp_job.train(None)
    for name, value in single.state_dict().items():
        torch.testing.assert_close(w0[name], value, atol=1e-5, rtol=1e-4)
    mean_rank_loss = [(a + b) / 2 for a, b in zip(l0, l1)]
    assert len(mean_rank_loss) == len(losses) == 12
    for a, b in zip(mean_rank_loss, losses):
        assert abs(a - b) <= 1e-4 * max(1.0, abs(b))
    assert (tmp_path / "checkpoint" / "model.safetensors").is_file(), "rank 0 writes the checkpoint"
