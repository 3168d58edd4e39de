from genre.hardware import bfloat16_warning, cpu_flags, native_bfloat16

ZEN4 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n\nprocessor\t: 1\nflags\t\t: fpu\n"
SAPPHIRE = "flags\t\t: fpu avx512f amx_bf16 amx_tile\n"
SKYLAKE = "flags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n"


def test_the_first_cpus_flags_are_read(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(ZEN4)
    assert {"avx512_bf16", "avx512f"} <= cpu_flags(info)
    assert "fpu" in cpu_flags(info) and len(cpu_flags(info)) == 6


def test_native_bfloat16_means_avx512_bf16_or_amx(tmp_path):
    for text, native in ((ZEN4, True), (SAPPHIRE, True), (SKYLAKE, False), ("", False)):
        info = tmp_path / "cpuinfo"
        info.write_text(text)
        assert native_bfloat16(info) is native, text


def test_no_cpuinfo_means_no_flags(tmp_path):
    assert cpu_flags(tmp_path / "missing") == set()
    assert native_bfloat16(tmp_path / "missing") is False


def test_asking_for_bfloat16_where_it_is_emulated_gets_a_warning(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(SKYLAKE)
    assert "emulates bfloat16" in bfloat16_warning(True, gpus=0, cpuinfo=info)
    assert bfloat16_warning(False, gpus=0, cpuinfo=info) is None
    assert bfloat16_warning(True, gpus=1, cpuinfo=info) is None
    info.write_text(ZEN4)
    assert bfloat16_warning(True, gpus=0, cpuinfo=info) is None
