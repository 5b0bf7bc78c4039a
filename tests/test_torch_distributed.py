"""msadam_torch.Adam under torch.distributed: DistributedDataParallel and ZeroRedundancyOptimizer.

Two gloo processes on localhost each train on half of every batch; the final parameters (and, for
ZeRO, the consolidated optimizer state) must equal a single-process run on the full batches. The
only difference allowed is the rounding of DDP's gradient average ((g0 + g1) / 2 against the mean
over the full batch), so the comparison is to 1e-6.

Sparse gradients: DDP's allreduce of a sparse COO gradient (gloo) returns it *coalesced* — repeated
rows summed — while MindSpore's sparse paths see every occurrence (weight decay is added per
occurrence, the default path squares each one). A DDP run therefore equals a single-process run
whose ``.grad`` was coalesced before the step, on every sparse path.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import msadam_torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch import nn  # noqa: E402

if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

WORLD = 2
STEPS = 4
BATCH = 16
JOIN_TIMEOUT = 240.0  # seconds, for both workers (spawn, init, training)
KWARGS: dict[str, Any] = {"learning_rate": 0.01, "weight_decay": 0.1}
SCENARIOS = ["ddp", "ddp-sparse", "ddp-sparse-cpu-lazy", "zero", "zero-groups", "zero-bucket-view", "zero-resume"]
# Sparse scenarios: extra Adam arguments and the target (None: MindSpore's default composite path).
SPARSE: dict[str, tuple[dict[str, Any], str | None]] = {
    "ddp-sparse": ({}, None),
    "ddp-sparse-cpu-lazy": ({"use_lazy": True}, "CPU"),
}


def adam(params: Any, scenario: str) -> Any:
    extra, target = SPARSE.get(scenario, ({}, None))
    opt = msadam_torch.Adam(params, **KWARGS, **extra)
    if target is not None:
        opt.target = target
    return opt


class Net(nn.Module):
    """Linear -> LayerNorm -> Linear, optionally fed by a sparse Embedding; MindSpore names via name_parameters."""

    def __init__(self, embedding: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(20, 16, sparse=True) if embedding else None
        self.fc1, self.norm, self.fc2 = nn.Linear(16, 32), nn.LayerNorm(32), nn.Linear(32, 4)
        msadam_torch.name_parameters(self)  # LayerNorm weight/bias -> gamma/beta: no weight decay

    def forward(self, x: Any) -> Any:
        if self.emb is not None:
            x = self.emb(x).mean(dim=1)
        return self.fc2(torch.tanh(self.norm(self.fc1(x))))


def batch(step: int, embedding: bool) -> tuple[Any, Any]:
    generator = torch.Generator().manual_seed(100 + step)
    x = torch.randint(0, 6, (BATCH, 3), generator=generator) if embedding else torch.randn(BATCH, 16,
                                                                                           generator=generator)
    return x, torch.randn(BATCH, 4, generator=generator)


def param_groups(model: Net, scenario: str) -> Any:
    if scenario != "zero-groups":
        return list(model.parameters())
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    return [{"params": weights, "weight_decay": 0.1}, {"params": [p for n, p in model.named_parameters()
                                                                 if not n.endswith("weight")], "lr": 0.02}]


def scheduler(opt: Any, start: int) -> Any:
    """Halve every 2 steps; from ``start`` on a resumed optimizer (its groups hold 'initial_lr' then)."""
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 0.5 ** (epoch // 2), last_epoch=start - 1)


def train(model: nn.Module, opt: Any, steps: range, embedding: bool, rank: int | None = None) -> None:
    """Steps over the full batches (``rank`` None, sparse gradients coalesced as DDP's are) or this rank's half."""
    lr_scheduler = scheduler(opt, steps.start)
    for step in steps:
        x, y = batch(step, embedding)
        if rank is not None:
            half = slice(rank * BATCH // WORLD, (rank + 1) * BATCH // WORLD)
            x, y = x[half], y[half]
        opt.zero_grad()
        (model(x) - y).pow(2).mean().backward()
        if rank is None:
            for param in model.parameters():
                if param.grad is not None and param.grad.is_sparse:
                    param.grad = param.grad.coalesce()
        opt.step()
        lr_scheduler.step()


def reference(scenario: str) -> tuple[Net, Any]:
    embedding = scenario in SPARSE
    model = Net(embedding)
    opt = adam(param_groups(model, scenario), scenario)
    train(model, opt, range(STEPS), embedding)
    return model, opt


def _zero(model: Net, scenario: str) -> Any:
    from torch.distributed.optim import ZeroRedundancyOptimizer

    return ZeroRedundancyOptimizer(param_groups(model, scenario), optimizer_class=msadam_torch.Adam,
                                   parameters_as_bucket_view=scenario == "zero-bucket-view", **KWARGS)


def _worker(rank: int, port: int, scenario: str, out: str) -> None:
    """A worker process: train and save its results, then leave without interpreter teardown.

    Tearing down a process that used gloo sometimes aborts in C++ ("terminate called without an active
    exception", no Python frame: a background thread still joinable during static destruction) after
    everything has finished — about 1 run in 30 here. The results are on disk by then, so a worker that
    succeeded exits at once; one that failed raises as before and fails the test.
    """
    _train_and_save(rank, port, scenario, out)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _train_and_save(rank: int, port: int, scenario: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    if sys.platform.startswith("linux"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", rank=rank, world_size=WORLD, timeout=timedelta(seconds=60))
    try:
        from torch.nn.parallel import DistributedDataParallel

        embedding = scenario in SPARSE
        model = Net(embedding)
        ddp = DistributedDataParallel(model)
        if scenario.startswith("ddp"):
            opt = adam(param_groups(model, scenario), scenario)
            train(ddp, opt, range(STEPS), embedding, rank)
        elif scenario == "zero-resume":  # train, consolidate, rebuild everything from the state, continue
            opt = _zero(model, scenario)
            train(ddp, opt, range(STEPS // 2), embedding, rank)
            opt.consolidate_state_dict(to=0)
            path = Path(out) / "resume.pt"
            if rank == 0:
                torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, path)
            dist.barrier()
            saved = torch.load(path)
            model = Net(embedding)
            model.load_state_dict(saved["model"])
            ddp, opt = DistributedDataParallel(model), _zero(model, scenario)
            opt.load_state_dict(saved["opt"])
            train(ddp, opt, range(STEPS // 2, STEPS), embedding, rank)
        else:
            opt = _zero(model, scenario)
            train(ddp, opt, range(STEPS), embedding, rank)
        result: dict[str, Any] = {"params": {n: p.detach().clone() for n, p in model.named_parameters()}}
        if scenario.startswith("zero"):
            opt.consolidate_state_dict(to=0)
            if rank == 0:
                result["state"] = opt.state_dict()
        torch.save(result, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_workers(scenario: str, out: Path) -> list[dict[str, Any]]:
    context = torch.multiprocessing.start_processes(_worker, args=(_free_port(), scenario, str(out)), nprocs=WORLD,
                                                    join=False, start_method="spawn")
    deadline = time.monotonic() + JOIN_TIMEOUT
    try:
        while not context.join(timeout=max(0.0, min(5.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                pytest.fail(f"the {WORLD} workers did not finish within {JOIN_TIMEOUT} s")
    finally:
        for process in context.processes:  # only the workers started above
            if process.is_alive():
                process.terminate()
                process.join(5)
    return [torch.load(out / f"rank{rank}.pt") for rank in range(WORLD)]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_matches_single_process(scenario: str, tmp_path: Path) -> None:
    model, opt = reference(scenario)
    results = run_workers(scenario, tmp_path)
    for rank, result in enumerate(results):
        for name, param in model.named_parameters():
            torch.testing.assert_close(result["params"][name], param.detach(), rtol=1e-5, atol=1e-6,
                                       msg=lambda m, n=name, r=rank: f"rank {r}, {n}: {m}")
    if scenario.startswith("zero"):  # ZeRO's consolidated state is the single-process optimizer's
        state, expected = results[0]["state"], opt.state_dict()
        assert sorted(state["state"]) == sorted(expected["state"])
        for index, entry in expected["state"].items():
            for key, value in entry.items():
                got = state["state"][index][key]
                if torch.is_tensor(value):
                    torch.testing.assert_close(got, value, rtol=1e-5, atol=1e-6)
                else:
                    assert got == value, (index, key)
        assert [g["lr"] for g in state["param_groups"]] == [g["lr"] for g in expected["param_groups"]]


def test_zero_flat_parameters_keep_mindspore_names() -> None:
    """ZeRO hands its local optimizer one group restating the defaults: still MindSpore's ungrouped Adam."""
    model = Net(False)
    group = {"params": list(model.parameters())[:4], **KWARGS}  # what ZeroRedundancyOptimizer passes a rank
    opt = msadam_torch.Adam([group], **KWARGS)
    assert not opt.is_group
    assert [p.name for p in opt.parameters] == ["fc1.weight", "fc1.bias", "norm.gamma", "norm.beta"]
