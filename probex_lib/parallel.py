"""Run independent tasks serially, on a local process pool, or on a Dask cluster.

``executor`` is one of:

* ``"serial"``: in this process (debugging, tiny runs);
* ``"process"``: a local pool of ``n_workers`` spawned processes (default: one per core);
* a ``dask.distributed.Client`` (``LocalCluster``, a dask-jobqueue ``SLURMCluster``, ...);
* a scheduler address string such as ``"tcp://10.0.0.5:8786"``.

Every task runs with one torch thread, in every mode, so results do not depend on the mode:
one thread per process was measured faster than two threads in one process for the kit's
small models, and it makes serial and parallel runs bit-identical.
Results come back in task order. Progress is shown with tqdm.
"""
from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Union

import torch
from tqdm.auto import tqdm

Executor = Union[str, Any]  # "serial" | "process" | dask Client | scheduler address


@contextlib.contextmanager
def torch_threads(n: int = 1) -> Iterator[None]:
    """Run a block with ``n`` torch intra-op threads, restoring the previous number."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _one_thread_call(job: tuple[Callable, Any]) -> Any:
    fn, item = job
    with torch_threads(1):
        return fn(item)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def map_tasks(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    executor: Executor = "process",
    n_workers: int | None = None,
    desc: str | None = None,
) -> list[Any]:
    """``[fn(item) for item in items]``, run as ``executor`` says; results in input order.

    ``fn`` must be picklable (a module-level function) for "process" and Dask. A task that
    raises stops the run and re-raises its exception here.
    """
    jobs = [(fn, item) for item in items]
    bar = tqdm(total=len(jobs), desc=desc, disable=not desc)
    results: list[Any] = [None] * len(jobs)
    try:
        mode = executor if isinstance(executor, str) and executor in ("serial", "process") else "dask"
        if mode == "serial" or (mode == "process" and (n_workers == 1 or len(jobs) <= 1)):
            for i, job in enumerate(jobs):
                results[i] = _one_thread_call(job)
                bar.update()
        elif mode == "process":
            n = min(n_workers or default_workers(), max(1, len(jobs)))
            with ProcessPoolExecutor(n, mp_context=mp.get_context("spawn")) as pool:
                futures = {pool.submit(_one_thread_call, job): i for i, job in enumerate(jobs)}
                for fut in as_completed(futures):
                    results[futures[fut]] = fut.result()
                    bar.update()
        else:
            results = _dask_map(jobs, executor, bar)
    finally:
        bar.close()
    return results


def _dask_map(jobs: list, executor: Executor, bar: tqdm) -> list[Any]:
    from dask.distributed import Client, as_completed as dask_completed

    if isinstance(executor, str):
        if "://" not in executor and ":" not in executor:
            raise ValueError(
                f"unknown executor {executor!r}; use 'serial', 'process', a dask Client, or a scheduler address like 'tcp://host:8786'"
            )
        client, own = Client(executor), True
    else:
        client, own = executor, False
    try:
        futures = client.map(_one_thread_call, jobs, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * len(jobs)
        for fut in dask_completed(futures):
            results[index[fut.key]] = fut.result()
            bar.update()
        return results
    finally:
        if own:
            client.close()
