"""What this machine's CPU and GPUs can do, read without loading TensorFlow (the Streamlit server
checks settings with it)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# AVX512-BF16 (AMD Zen 4+, Intel Cooper Lake+) and AMX (Intel Sapphire Rapids+) run bfloat16
# products in hardware; elsewhere oneDNN emulates them and mixed bfloat16 is slower than float32.
BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The feature flags of the first CPU in ``cpuinfo``; empty where there is none (not Linux)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            return set(value.split())
    return set()


def native_bfloat16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether the CPU computes bfloat16 products in hardware (AVX512-BF16 or AMX)."""
    return bool(cpu_flags(cpuinfo) & set(BFLOAT16_FLAGS))


def bfloat16_warning(mixed_precision: bool, gpus: int, cpuinfo: str | Path = "/proc/cpuinfo") -> str | None:
    """What to tell a user who asks for mixed bfloat16 where it will be slower, else ``None``."""
    if not mixed_precision or gpus or native_bfloat16(cpuinfo):
        return None
    return (
        "this CPU has neither AVX512-BF16 nor AMX: oneDNN emulates bfloat16, so mixed precision "
        "trains slower than float32 here (leave out --mixed-precision)"
    )


# Where NVIDIA's driver shows its GPUs: a folder each under /proc, a device node each under /dev
# (a sandbox may show only the nodes). CUDA, so TensorFlow, uses no GPU without them.
NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")
DEVICES = Path("/dev")
# Loading TensorFlow and CUDA takes seconds; a child that takes this long is taken to see none.
GPU_PROBE_SECONDS = 120.0


@dataclass(frozen=True)
class Gpus:
    """This host's NVIDIA GPUs (``host``, as the driver lists them) and how many of them a
    training job started from this process would train on (``usable``: TensorFlow's count,
    after ``CUDA_VISIBLE_DEVICES`` and with or without its CUDA libraries)."""

    host: int = 0
    usable: int = 0


def nvidia_gpus(driver: str | Path | None = None, devices: str | Path | None = None) -> int:
    """How many GPUs NVIDIA's driver shows (defaults: :data:`NVIDIA_GPUS`, :data:`DEVICES`); 0 without it."""

    def count(folder: Path, keep) -> int:
        try:
            return sum(1 for entry in folder.iterdir() if keep(entry))
        except OSError:
            return 0

    listed = count(Path(driver or NVIDIA_GPUS), Path.is_dir)
    nodes = count(Path(devices or DEVICES), lambda entry: re.fullmatch(r"nvidia\d+", entry.name) is not None)
    return max(listed, nodes)


def training_gpus(driver: str | Path | None = None, devices: str | Path | None = None) -> Gpus:
    """Count the GPUs a training job would use, without loading TensorFlow here.

    Where NVIDIA's driver shows none (:func:`nvidia_gpus`) it is none, known at once.
    Otherwise TensorFlow counts them in a child process, as the job would (the same interpreter
    and environment): seconds, so callers keep the answer. Why a child: importing TensorFlow
    takes seconds and about 600 MB, and it would set up CUDA in the caller."""
    host = nvidia_gpus(driver, devices)
    if not host:
        return Gpus()
    probe = "from genre.train.distribute import visible_gpus; print(visible_gpus())"
    try:
        done = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=Path(__file__).resolve().parents[2],
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            capture_output=True,
            text=True,
            timeout=GPU_PROBE_SECONDS,
        )
        usable = int(done.stdout.split()[-1]) if done.returncode == 0 else 0
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        usable = 0  # a TensorFlow that cannot count them would not train on them either
    return Gpus(host, usable)
