"""How close each way of computing musicnn's input from 22,050 Hz windows comes to musicnn's own.

    .venv/bin/python bench/musicnn_front_end.py [--data DIR] [--songs N]

The exact path is musicnn's extractor: ``librosa.load(sr=16000)`` (librosa's default resampler,
soxr HQ), then the log-mel. Each candidate computes the features of the same 3 s windows of real
songs; the figure is the cosine similarity of musicnn's 200-d embedding to the exact path's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from genre import SAMPLE_RATE, WINDOW  # noqa: E402
from genre.audio.windows import cut_windows  # noqa: E402
from genre.data.dataset import load_dataset  # noqa: E402
from genre.models import musicnn  # noqa: E402


def spectral_resample(windows: np.ndarray, response: np.ndarray | None) -> np.ndarray:
    n = WINDOW * musicnn.MUSICNN_RATE // SAMPLE_RATE
    spectrum = np.fft.rfft(windows, axis=1)[:, : n // 2 + 1]
    if response is not None:
        spectrum = spectrum * response
    return np.fft.irfft(spectrum, n=n, axis=1) * (n / WINDOW)


def stft_at_22050(windows: np.ndarray) -> np.ndarray:
    """No resampling: a 706-point STFT with hop 353 at 22,050 Hz spans the same 32 ms / 16 ms
    as musicnn's 512 / 256 at 16 kHz; mel bands to 8 kHz; power rescaled for the longer window."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=windows, sr=SAMPLE_RATE, n_fft=706, hop_length=353, n_mels=96, fmax=8000, pad_mode="reflect"
    )
    mel = np.swapaxes(mel, 1, 2)[:, : musicnn.FRAMES] * (512 / 706) ** 2
    return np.log10(10000.0 * mel.astype(np.float32) + 1.0)


def main() -> None:
    import librosa

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "gtzan"))
    parser.add_argument("--songs", type=int, default=2, help="songs per genre")
    args = parser.parse_args()
    cache = load_dataset(args.data, progress=False)
    picks = [i for g in range(len(cache.genres)) for i in np.flatnonzero(cache.labels == g)[: args.songs]]
    windows = np.concatenate([cut_windows(np.asarray(cache.song(i)))[0] for i in picks])
    network = musicnn.load_network()

    def embed(features: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [np.asarray(network(features[k : k + 32], training=False)[1]) for k in range(0, len(features), 32)]
        )

    per_window = lambda signals: np.stack([musicnn.reference_features(s)[: musicnn.FRAMES] for s in signals])  # noqa: E731
    exact = embed(
        per_window([librosa.resample(w, orig_sr=SAMPLE_RATE, target_sr=musicnn.MUSICNN_RATE) for w in windows])
    )
    candidates = {
        "spectrum cut at 8 kHz (brick wall)": per_window(spectral_resample(windows, None)),
        "spectrum cut at 8 kHz x soxr HQ response (shipped)": np.asarray(musicnn.MusicnnMel()(windows[..., None])),
        "706-point STFT at 22,050 Hz (no resampling)": stft_at_22050(windows),
    }
    print(
        f"{len(windows)} windows of {len(picks)} songs ({args.songs} per genre); cosine similarity of the embedding "
        f"to the exact path"
    )
    print(f"{'front end':55s} {'mean':>8s} {'min':>8s}")
    for name, features in candidates.items():
        a = embed(features)
        cosine = (a * exact).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(exact, axis=1)
        print(f"{name:55s} {cosine.mean():8.5f} {cosine.min():8.5f}")


if __name__ == "__main__":
    main()
