"""What this machine's CPU can do, read without loading TensorFlow (the Streamlit server checks
settings with it)."""

from __future__ import annotations

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
