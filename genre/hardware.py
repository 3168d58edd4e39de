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
