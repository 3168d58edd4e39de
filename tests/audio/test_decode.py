"""Decoding: every format, bytes and paths, resampling, downmixing, and the clear errors."""

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from genre import SAMPLE_RATE
from genre.audio.decode import AudioError, decode
from synth import song, write


@pytest.fixture(autouse=True, params=["with-ffmpeg", "without-ffmpeg"])
def ffmpeg_on_path(request, monkeypatch, tmp_path_factory):
    """Every decoding test runs twice: with an ffmpeg on PATH (librosa's audioread fallback then
    finds it, as it does on most users' machines) and without one (as on a bare machine)."""
    import audioread

    if request.param == "with-ffmpeg":
        if shutil.which("ffmpeg") is None:
            if os.environ.get("CI"):
                pytest.fail("ffmpeg is not installed: scripts/test.sh installs it")
            pytest.skip("ffmpeg is not installed (scripts/test.sh installs it)")
    else:
        # A PATH of one empty folder: no ffmpeg or avconv to find.
        monkeypatch.setenv("PATH", str(tmp_path_factory.mktemp("no-ffmpeg")))
    audioread.available_backends(flush_cache=True)  # audioread caches what it found
    yield request.param
    monkeypatch.undo()
    audioread.available_backends(flush_cache=True)


@pytest.mark.parametrize("suffix", ["wav", "au", "flac", "ogg", "mp3"])
def test_every_format_decodes_from_path_and_bytes(tmp_path, suffix):
    audio = song("drones", 2.0, seed=1)
    path = write(tmp_path / f"x.{suffix}", audio)
    from_path = decode(path)
    from_bytes = decode(path.read_bytes(), name=f"x.{suffix}")
    assert from_path.dtype == np.float32 and from_path.ndim == 1
    # Lossy codecs add encoder delay and padding; the duration stays about the same.
    assert abs(from_path.size - audio.size) < 0.1 * SAMPLE_RATE
    np.testing.assert_array_equal(from_path, from_bytes)
    if suffix in ("wav", "au", "flac"):
        np.testing.assert_allclose(from_path, audio, atol=1e-4)


def test_stereo_is_averaged_and_other_rates_resampled(tmp_path):
    rate = 44_100
    t = np.arange(2 * rate) / rate
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    out = decode(write(tmp_path / "s.wav", stereo, sr=rate))
    assert out.size == 2 * SAMPLE_RATE
    assert np.abs(out).max() == pytest.approx(0.25, abs=0.01)  # the mean of a tone and silence
    spectrum = np.abs(np.fft.rfft(out))
    assert np.fft.rfftfreq(out.size, 1 / SAMPLE_RATE)[spectrum.argmax()] == pytest.approx(440, abs=1)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"this is not audio at all" * 20), "not a readable audio file"),
        (lambda p: sf.write(p, np.zeros(3 * SAMPLE_RATE, np.float32), SAMPLE_RATE), "silent"),
        (lambda p: sf.write(p, song("noise", 0.5, 1), SAMPLE_RATE), "too short"),
    ],
    ids=["empty", "garbage", "silent", "short"],
)
def test_unusable_audio_raises_one_error_naming_file_and_reason(tmp_path, make, reason):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError) as caught:
        decode(path)
    assert str(path) in str(caught.value) and reason in str(caught.value)
    with pytest.raises(AudioError, match=reason):
        decode(path.read_bytes(), name="upload.wav")


def test_missing_file_and_empty_bytes():
    with pytest.raises(AudioError, match="no such file"):
        decode("/nonexistent/song.wav")
    with pytest.raises(AudioError, match="uploaded audio: the file is empty"):
        decode(b"")


def _tone(seconds: float = 4.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.5 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 1375 * t)).astype(np.float32)


@pytest.mark.parametrize(
    "fmt, subtype, bits",
    [
        ("WAV", "PCM_U8", 8),  # wav's 8-bit is unsigned: 128 is silence
        ("WAV", "PCM_16", 16),
        ("WAV", "PCM_24", 24),
        ("WAV", "PCM_32", 32),
        ("WAV", "FLOAT", None),
        ("AU", "PCM_S8", 8),  # au's 8-bit is signed
        ("AU", "PCM_16", 16),
        ("FLAC", "PCM_S8", 8),
        ("FLAC", "PCM_24", 24),
        ("AIFF", "PCM_U8", 8),
    ],
)
def test_every_pcm_width_decodes_to_the_same_waveform_within_quantisation(fmt, subtype, bits):
    """An 8-bit copy of a song is the 16-bit song plus rounding: no offset, no scaling, no
    sign flip (an unsigned byte read as signed would be far off)."""
    original = _tone()
    buffer = io.BytesIO()
    sf.write(buffer, original, SAMPLE_RATE, format=fmt, subtype=subtype)
    decoded = decode(buffer.getvalue(), name=f"tone.{fmt.lower()}")
    step = 2.0 / 2**bits if bits else 1e-7  # one quantisation step of a full scale of [-1, 1)
    assert decoded.shape == original.shape
    assert np.abs(decoded - original).max() <= step
    assert abs(float(decoded.mean() - original.mean())) <= step / 2  # no DC offset beyond rounding
    assert np.corrcoef(decoded, original)[0, 1] > 0.999


@pytest.mark.parametrize("name", ["notes.wav", "notes.mp3", "song.flac"])
def test_an_unreadable_file_gets_one_clear_line_naming_it(tmp_path, name):
    text = b"these are my notes, not a song\n" * 40
    path = tmp_path / name
    path.write_bytes(text)
    for source, label in ((path, str(path)), (text, name)):
        with pytest.raises(AudioError) as caught:
            decode(source, name=None if isinstance(source, Path) else name)
        message = str(caught.value)
        assert message == f"{label}: not a readable audio file (its format was not recognised, or the file is damaged)"
        # libsndfile's own words were misleading: a Python object's address, "does not exist".
        assert "BytesIO" not in message and "0x" not in message and "does not exist" not in message
