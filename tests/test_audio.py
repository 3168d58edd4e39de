"""Decoding: every format, bytes and paths, resampling, downmixing, and the clear errors."""

import numpy as np
import pytest
import soundfile as sf

from genre import SAMPLE_RATE
from genre.audio import AudioError, decode
from synth import song, write


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
