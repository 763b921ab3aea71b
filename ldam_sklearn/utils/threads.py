"""How many PyTorch intra-op threads one fit or prediction uses.

PyTorch starts one intra-op thread per core. For the small networks of
tabular data the threads mostly wait on each other, and on a machine whose
cores are busy with other work a waiting thread loses its core: a default
20-epoch fit on 2,800 rows took 29.9 s with two threads and 2.8 s with one
beside two other CPU-bound processes (issue #17). ``"auto"`` therefore uses
one thread for networks whose training step is small, and otherwise one
thread per core that no other runnable task is using at the moment.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["busy_cores", "resolve_n_threads", "step_macs", "torch_threads"]

#: Multiply-adds of one training step (batch size x dense weights) below
#: which one thread is used (``benchmarks/bench_threads.py``, 2 cores, idle):
#: a second thread gained 3 to 11 % on one default network (9 to 12 million)
#: and 29 to 40 % on the five packed members of the dense default (43 to 57
#: million), whose steps now get the idle cores.
SMALL_STEP_MACS = 25_000_000

#: Readings of the run queue per decision; the smallest counts, because a
#: short-lived process (a shell command, a compiler) should not halve a fit.
_SAMPLES = 3


def step_macs(module: nn.Module, batch_size: int) -> int:
    """Multiply-adds of the dense layers for one batch, forward pass only.

    Embedding tables (the ``SparseLinear`` first layer on sparse input) are
    left out: a batch touches only the rows of its non-zero features, and
    that gather is memory-bound, not worth a second thread [1]_.

    Parameters
    ----------
    module : torch.nn.Module
        The network.
    batch_size : int
        Rows per training step.

    Returns
    -------
    macs : int
        ``batch_size`` times the number of dense weights and biases.

    References
    ----------
    .. [1] PyTorch documentation, "CPU threading and TorchScript inference",
       https://pytorch.org/docs/stable/notes/cpu_threading_torchscript_inference.html.

    Examples
    --------
    >>> from torch import nn
    >>> step_macs(nn.Linear(10, 4), batch_size=8)
    352
    """
    sparse_weights = {
        id(p)
        for m in module.modules()
        if isinstance(m, nn.EmbeddingBag | nn.Embedding)
        for p in m.parameters(recurse=False)
    }
    dense = sum(p.numel() for p in module.parameters() if id(p) not in sparse_weights)
    return dense * batch_size


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _running_here() -> int:
    running = 0
    for task in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError), open(f"/proc/self/task/{task}/stat") as f:
            # The state follows the parenthesised command name.
            running += f.read().rsplit(")", 1)[1].split()[0] == "R"
    return running


def busy_cores() -> int:
    """Cores that other processes' runnable tasks are using right now.

    Read from the run-queue count of ``/proc/loadavg`` minus this process's
    own running threads, the smallest of three readings; 0 where the system
    does not expose them (not Linux). An instantaneous count, unlike the
    load average, which trails a change of load by a minute.

    Returns
    -------
    busy : int
        Runnable tasks of other processes, at least 0.

    References
    ----------
    .. [1] Linux ``proc(5)`` manual page, ``/proc/loadavg``: "the number of
       currently runnable kernel scheduling entities".

    Examples
    --------
    >>> busy_cores() >= 0
    True
    """
    try:
        readings = []
        for _ in range(_SAMPLES):
            with open("/proc/loadavg") as f:
                runnable = int(f.read().split()[3].split("/")[0])
            readings.append(runnable - _running_here())
    except (OSError, ValueError, IndexError):
        return 0
    return max(0, min(readings))


def resolve_n_threads(n_threads: int | str, macs: int, ceiling: int) -> int:
    """The thread count for ``n_threads``: ``"auto"``, an int, or ``-1`` for all cores.

    ``"auto"`` gives one thread when a step does fewer than
    ``SMALL_STEP_MACS`` multiply-adds, else one per core that other
    processes leave idle (:func:`busy_cores`), between 1 and ``ceiling``.

    Parameters
    ----------
    n_threads : int or "auto"
        The estimator's parameter.
    macs : int
        Multiply-adds of one step, from :func:`step_macs`.
    ceiling : int
        torch's current setting, which ``"auto"`` never exceeds: it carries
        ``OMP_NUM_THREADS`` and ``torch.set_num_threads`` choices, and joblib
        and Dask workers already start with their share of the cores.

    Returns
    -------
    n : int
        Intra-op threads to use, at least 1.

    References
    ----------
    .. [1] PyTorch documentation, "CPU threading and TorchScript inference",
       https://pytorch.org/docs/stable/notes/cpu_threading_torchscript_inference.html.

    Examples
    --------
    >>> resolve_n_threads("auto", macs=1_000_000, ceiling=8)
    1
    >>> resolve_n_threads(3, macs=1_000_000, ceiling=8)
    3
    """
    if n_threads == -1:
        return _usable_cores()
    if n_threads != "auto":
        return int(n_threads)
    if macs < SMALL_STEP_MACS:
        return 1
    return max(1, min(ceiling, _usable_cores() - busy_cores()))


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads, then restore torch's setting.

    Parameters
    ----------
    n : int
        Intra-op threads inside the block (``torch.set_num_threads``).

    Yields
    ------
    None

    References
    ----------
    .. [1] PyTorch documentation, "CPU threading and TorchScript inference",
       https://pytorch.org/docs/stable/notes/cpu_threading_torchscript_inference.html.

    Examples
    --------
    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    previous = torch.get_num_threads()
    if n != previous:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)
