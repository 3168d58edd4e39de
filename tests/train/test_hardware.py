from genre.train.hardware import bfloat16_warning, cpu_flags, native_bfloat16

ZEN4 = (
    "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n\n"
    "processor\t: 1\nflags\t\t: fpu\n"
)
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


def test_without_nvidias_driver_no_gpu_is_counted_and_no_child_started(tmp_path, monkeypatch):
    import subprocess

    from genre.train import hardware

    def no_child(*args, **kwargs):
        raise AssertionError("a child process was started")

    monkeypatch.setattr(subprocess, "run", no_child)
    assert hardware.training_gpus(tmp_path / "missing", tmp_path / "missing") == hardware.Gpus(0, 0)
    (tmp_path / "empty").mkdir()
    (tmp_path / "dev").mkdir()
    for name in ("nvidiactl", "nvidia-uvm", "null"):  # the driver's other nodes are no GPUs
        (tmp_path / "dev" / name).touch()
    assert hardware.training_gpus(tmp_path / "empty", tmp_path / "dev") == hardware.Gpus(0, 0)


def test_the_driver_shows_gpus_as_folders_or_as_device_nodes(tmp_path):
    from genre.train import hardware

    (tmp_path / "gpus" / "0000:00:06.0").mkdir(parents=True)
    (tmp_path / "dev").mkdir()
    assert hardware.nvidia_gpus(tmp_path / "gpus", tmp_path / "dev") == 1
    for name in ("nvidia0", "nvidia1", "nvidiactl"):
        (tmp_path / "dev" / name).touch()
    assert hardware.nvidia_gpus(tmp_path / "missing", tmp_path / "dev") == 2  # a sandbox without /proc's folder


def test_gpus_the_driver_lists_are_counted_by_tensorflow_in_a_child(tmp_path):
    """The driver's folder (faked here) says how many GPUs the host has; the usable ones are
    TensorFlow's own count (none on a CPU-only host)."""
    from genre.train import hardware
    from genre.train.distribute import visible_gpus

    for bus in ("0000:01:00.0", "0000:02:00.0"):
        (tmp_path / bus).mkdir()
    assert hardware.training_gpus(tmp_path, tmp_path / "no-dev") == hardware.Gpus(2, visible_gpus())
