"""Training on several processes launched by torchrun: the process group and everything it does.

    world_from_env() -> World            torchrun's RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE
    rank_device(world, device)           cuda:LOCAL_RANK under torchrun on CUDA, else what --device says
    shard(batch_size, world) -> range    this rank's items of the global batch
    joined(world, device, threads)       init the group (nccl on CUDA, gloo on CPU), destroy it on exit
    Group                                the collectives the trainer uses; on one process, no-ops

    torchrun --nproc-per-node 2 -m distill_rvc teach ...

The recipe's batch is the global batch. Rank r takes a contiguous slice of the step's batch
(batches.py draws it whole from (seed, step)); where the batch does not divide by the world
size, the first `batch % world` ranks take one item more. Every rank weights its loss by
its items' share of the *global* batch and the gradients are summed over the ranks, so one
step equals the single-process step on the whole batch, whatever the world size; resuming
at another world size therefore continues the same run.

Gradients are summed by one all-reduce per optimiser step, after the last micro-batch
(what DistributedDataParallel does under `no_sync` for accumulation), over every trained
parameter: the student, the loss's projections and the discriminator. DDP's wrapper would
cover only a module whose forward it runs, and its `find_unused_parameters` pitfalls (frozen
parts, the adversarial stage starting mid-run) are where RVC's multi-GPU runs deadlock.

No rank can leave the others waiting: a CUDA out-of-memory on any rank is agreed on by all
before the gradients are reduced (all halve the micro-batch), a stop signal is agreed on each
step, and rank 0's file writes (`on_main`) tell the other ranks whether they failed. A
single process (no WORLD_SIZE, or 1) never initialises a process group.
Not here: the loop (trainer.py) or the data (batches.py).
"""
from __future__ import annotations

import contextlib
import datetime
import logging
import os
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, TypeVar

import torch

from ..errors import DistillRVCError
from ..options import check_threads, resolve_device

log = logging.getLogger(__name__)
T = TypeVar("T")
TIMEOUT = datetime.timedelta(minutes=30)  # a rank that has not answered a collective by then has hung
_MESSAGE_BYTES = 2048
_BUCKET_BYTES = 32 * 2**20


@dataclass(frozen=True)
class World:
    """Where this process stands among torchrun's workers (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world_from_env(environ: dict[str, str] | None = None) -> World:
    """torchrun's variables; none, or WORLD_SIZE=1, is a single process."""
    env = os.environ if environ is None else environ
    try:
        size = int(env.get("WORLD_SIZE", "1"))
        world = World(rank=int(env.get("RANK", "0")), size=size, local_rank=int(env.get("LOCAL_RANK", "0")),
                      local_size=int(env.get("LOCAL_WORLD_SIZE", str(size))))
    except ValueError:
        raise DistillRVCError("RANK, WORLD_SIZE, LOCAL_RANK must be integers: start several processes with "
                              "`torchrun --nproc-per-node N -m distill_rvc teach ...`") from None
    if world.size < 1 or not 0 <= world.rank < world.size or not 0 <= world.local_rank < world.local_size:
        raise DistillRVCError(f"RANK={world.rank}, LOCAL_RANK={world.local_rank}, WORLD_SIZE={world.size}: not a "
                              "torchrun worker's; start with `torchrun --nproc-per-node N -m distill_rvc teach ...`")
    return world


def rank_device(world: World, device: str | torch.device | None) -> torch.device:
    """The device of this rank: under torchrun, "auto"/"cuda" is cuda:LOCAL_RANK (one GPU per
    process) and "cpu" stays; a fixed cuda:N is refused, as every rank would take the same GPU."""
    if not world.distributed:
        return resolve_device(device)
    text = "auto" if device is None else str(device).strip().lower()
    if text.startswith("cuda:"):
        raise DistillRVCError(f"--device {text} under torchrun: every rank would use that one GPU; give --device "
                              "cuda (rank r takes cuda:LOCAL_RANK) and choose the GPUs with CUDA_VISIBLE_DEVICES")
    dev = resolve_device(text)
    if dev.type != "cuda":
        return dev
    if world.local_rank >= torch.cuda.device_count():
        raise DistillRVCError(f"{world.local_size} processes on this machine but torch sees "
                              f"{torch.cuda.device_count()} GPU(s): lower --nproc-per-node")
    return torch.device("cuda", world.local_rank)


def shard(batch_size: int, world: World) -> range:
    """This rank's items of a global batch: contiguous, the first `batch % size` ranks one more."""
    if batch_size < world.size:
        raise DistillRVCError(f"batch size {batch_size} is smaller than the {world.size} processes: every rank "
                              "needs at least one item; raise --batch-size or lower --nproc-per-node")
    base, extra = divmod(batch_size, world.size)
    start = world.rank * base + min(world.rank, extra)
    return range(start, start + base + (world.rank < extra))


def rank_micro(micro: int, batch_size: int, world: World) -> int:
    """A rank's micro-batch for the recipe's global one: the global micro-batch divided among
    the ranks (rounded up), at most the rank's share."""
    return max(1, min(-(-micro // world.size), len(shard(batch_size, world))))


def rank_threads(world: World, threads: int | None) -> int | None:
    """CPU threads of one rank: --threads if given, else the cores shared among the local ranks
    (None on a single process: torch's own choice)."""
    threads = check_threads(threads)
    if threads is not None or not world.distributed:
        return threads
    return max(1, (os.cpu_count() or 1) // world.local_size)


class Group:
    """The collectives of one run. On a single process each is a no-op (or the value itself)."""

    def __init__(self, world: World, device: torch.device):
        self.world, self.device = world, device
        # gloo reduces CPU tensors; nccl those on the rank's GPU
        self._comm = device if world.distributed and device.type == "cuda" else torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.world.is_main

    def shard(self, batch_size: int) -> range:
        return shard(batch_size, self.world)

    def barrier(self) -> None:
        if self.world.distributed:
            torch.distributed.barrier()

    def any(self, flag: bool) -> bool:
        """True on every rank when `flag` is true on any."""
        return self.flags(flag)[0]

    def flags(self, *flags: bool) -> list[bool]:
        """Each flag true on every rank when it is true on any (one reduction for all)."""
        if not self.world.distributed:
            return [bool(f) for f in flags]
        t = torch.tensor([1.0 if f else 0.0 for f in flags], device=self._comm)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return [bool(v > 0) for v in t.tolist()]

    def sum_scalars(self, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each scalar summed over the ranks (the ranks' shares of a global-batch mean add up)."""
        if not self.world.distributed or not values:
            return values
        names = sorted(values)
        t = torch.stack([torch.as_tensor(values[n], dtype=torch.float32).reshape(()).to(self._comm)
                         for n in names])
        torch.distributed.all_reduce(t)
        return {n: t[i] for i, n in enumerate(names)}

    def sum_gradients(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Every gradient summed over the ranks, in flat buckets (the same parameters have a
        gradient on every rank: they run the same code)."""
        if not self.world.distributed:
            return
        bucket: list[torch.Tensor] = []
        size = 0
        for p in params:
            if p.grad is None:
                continue
            if bucket and (p.grad.dtype != bucket[0].dtype or size >= _BUCKET_BYTES):
                self._reduce_bucket(bucket)
                bucket, size = [], 0
            bucket.append(p.grad)
            size += p.grad.numel() * p.grad.element_size()
        if bucket:
            self._reduce_bucket(bucket)

    def _reduce_bucket(self, grads: list[torch.Tensor]) -> None:
        flat = torch.cat([g.reshape(-1) for g in grads]).to(self._comm)
        torch.distributed.all_reduce(flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def broadcast_modules(self, *modules: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers onto every rank, so all start from the same weights."""
        if not self.world.distributed:
            return
        with torch.no_grad():
            for module in modules:
                for t in list(module.parameters()) + list(module.buffers()):
                    moved = t.data.to(self._comm)
                    torch.distributed.broadcast(moved, src=0)
                    if moved is not t.data:
                        t.data.copy_(moved)

    def broadcast_floats(self, values: list[float | None]) -> list[float | None]:
        """Rank 0's floats on every rank (None travels as NaN and comes back as None)."""
        if not self.world.distributed:
            return values
        t = torch.tensor([float("nan") if v is None else float(v) for v in values], dtype=torch.float64,
                         device=self._comm)
        torch.distributed.broadcast(t, src=0)
        return [None if v != v else float(v) for v in t.tolist()]

    def on_main(self, write: Callable[[], T]) -> T | None:
        """Run `write` (a file write) on rank 0 alone; if it fails there, every rank fails with
        its message (the others raise DistillRVCError) instead of waiting for rank 0 forever."""
        if not self.world.distributed:
            return write()
        result, failure, message = None, None, b""
        if self.is_main:
            try:
                result = write()
            except BaseException as e:  # noqa: BLE001 - re-raised below, after the others are told
                failure = e
                message = (f"{type(e).__name__}: {e}" if not isinstance(e, DistillRVCError) else str(e)).encode()
        t = torch.zeros(_MESSAGE_BYTES + 1, dtype=torch.uint8, device=self._comm)
        if self.is_main and failure is not None:
            message = message[:_MESSAGE_BYTES] or b"failed"
            t[0] = 1
            t[1:1 + len(message)] = torch.frombuffer(bytearray(message), dtype=torch.uint8)
        torch.distributed.broadcast(t, src=0)
        if failure is not None:
            raise failure
        if int(t[0]):
            text = bytes(t[1:].cpu().tolist()).rstrip(b"\0").decode(errors="replace")
            raise DistillRVCError(f"rank 0 failed: {text}")
        return result

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the body first (e.g. builds a cache), then the others (which find it)."""
        if self.world.distributed and not self.is_main:
            self.barrier()
        yield
        if self.world.distributed and self.is_main:
            self.barrier()


def single(device: torch.device) -> Group:
    """The group of a single process: no process group, every collective a no-op."""
    return Group(World(), device)


@contextlib.contextmanager
def joined(world: World, device: torch.device, threads: int | None = None,
           timeout: datetime.timedelta = TIMEOUT) -> Iterator[Group]:
    """This process's place in the run: on several ranks, the process group (nccl on CUDA, gloo
    on CPU), destroyed on the way out, errors included; other ranks log only errors."""
    n = rank_threads(world, threads)
    if n is not None:
        torch.set_num_threads(n)
    if not world.distributed:
        yield single(device)
        return
    import torch.distributed as dist

    if not dist.is_available():
        raise DistillRVCError("this torch build has no torch.distributed: run a single process")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    package = logging.getLogger("distill_rvc")
    level = package.level
    if not world.is_main:
        package.setLevel(logging.ERROR)  # one voice on the console: rank 0's
    try:
        dist.init_process_group(backend, rank=world.rank, world_size=world.size, timeout=timeout,
                                **({"device_id": device} if device.type == "cuda" else {}))
    except (RuntimeError, ValueError) as e:
        package.setLevel(level)
        raise DistillRVCError(f"could not join the other {world.size - 1} process(es) ({backend}): {e}") from None
    log.info("rank %d of %d on %s (%s), %d CPU thread(s)", world.rank, world.size, device, backend,
             torch.get_num_threads())
    try:
        yield Group(world, device)
    finally:
        package.setLevel(level)
        if dist.is_initialized():
            dist.destroy_process_group()


def describe_batch(batch_size: int, micro: int, world: World) -> str:
    """The log line of the batch rule: global batch, each rank's share and micro-batch."""
    if not world.distributed:
        return f"batch {batch_size}, micro-batch {micro}"
    base, extra = divmod(batch_size, world.size)
    shares = f"{base}" if not extra else f"{base + 1} on ranks 0-{extra - 1}, {base} on the others"
    return (f"global batch {batch_size} over {world.size} processes: {shares} each, micro-batch {micro}; each "
            "rank's loss is weighted by its share and the gradients summed, so a step is the single-process step "
            "on the whole batch")

