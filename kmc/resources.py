"""What this process may use: CPUs (affinity and batch allocations) and available memory.

``usable_cpus`` is the worker count of ``workers = 0``: ``os.cpu_count()`` counts the whole
machine, while a process pinned with ``taskset`` or started by SLURM may use fewer.
``available_memory`` bounds what a run may allocate (``kmc check`` prints the estimate
against it); it is the smaller of the kernel's MemAvailable and a cgroup memory limit.
"""
import os
import re


def usable_cpus():
    """CPUs this process may run on.

    The smallest of: the CPU affinity mask (``os.sched_getaffinity``: ``taskset``, cgroup
    cpusets), the SLURM allocation (``SLURM_CPUS_PER_TASK``, else ``SLURM_CPUS_ON_NODE``,
    else the first count of ``SLURM_JOB_CPUS_PER_NODE``) and ``os.cpu_count()``.
    """
    counts = [os.cpu_count() or 1]
    if hasattr(os, "sched_getaffinity"):
        counts.append(len(os.sched_getaffinity(0)))
    slurm = _slurm_cpus(os.environ)
    if slurm:
        counts.append(slurm)
    return max(1, min(counts))


def _slurm_cpus(env):
    """CPUs SLURM gave this task, or None outside SLURM (or when it does not say)."""
    for name in ("SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE", "SLURM_JOB_CPUS_PER_NODE"):
        value = env.get(name, "")
        # SLURM_JOB_CPUS_PER_NODE reads like "8(x2),4": the first count is this node's
        match = re.match(r"\s*(\d+)", value)
        if match and int(match.group(1)) > 0:
            return int(match.group(1))
    return None


def available_memory():
    """Bytes this process can still allocate, or None if the system does not say.

    MemAvailable of /proc/meminfo (free plus reclaimable cache), capped by the cgroup v2
    or v1 memory limit minus its current usage (containers, SLURM jobs).
    """
    candidates = []
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    candidates.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_file) as fh:
                limit = fh.read().strip()
            with open(usage_file) as fh:
                usage = int(fh.read().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:  # "max" or a huge v1 value: no limit
            candidates.append(max(int(limit) - usage, 0))
    if not candidates and hasattr(os, "sysconf"):
        try:
            candidates.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError):
            pass
    return min(candidates) if candidates else None


def format_bytes(n):
    """``1.5 GB`` style (powers of 1024)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if value < 1024 or unit == "PB":
            return f"{value:.3g} {unit}"
        value /= 1024
    return f"{value:.3g} PB"
