"""Songs per second of ``python -m genre library``'s batched path against a loop over
``Classifier.classify``, and where the time goes (decode, front end, head).

For each run (default ``transfer-stratified`` and ``fast-stratified``) and each folder (N
generated 30 s ogg files written to a temporary folder, and the GTZAN-280 ogg files when
/work/shared/gtzan is there):

- loop: ``Classifier.classify(path)`` for every file, one after the other;
- batched: ``genre.serve.library.classify_files`` (decoding threads ahead, windows of several songs
  in one model call);
- decode: ``genre.audio.decode.decode`` + ``cut_windows`` alone, one thread;
- front end / head: the model's time per window for the front end sub-model (transfer: the
  frozen musicnn; fast: the log-mel front end) and the whole model, on 64-window batches.

    .venv/bin/python bench/library.py --generated 40 --gtzan /work/shared/gtzan --out bench/results/library.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

FRONT_END = {"transfer": "musicnn_features", "fast": "mel_norm"}  # the layer that ends the front end


def generated(folder: Path, n: int) -> list[Path]:
    import soundfile as sf

    from synth import GENRES, song

    paths = []
    for i in range(n):
        path = folder / f"song{i:04d}.ogg"
        sf.write(path, song(GENRES[i % len(GENRES)], 30.0, seed=i), 22_050)
        paths.append(path)
    return paths


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def model_split(classifier, model_name: str) -> dict:
    import keras

    windows = np.random.default_rng(0).normal(0, 0.1, (64, classifier.model.input_shape[1])).astype(np.float32)
    classifier.predict_windows(windows, batch_size=64)  # warm
    whole = min(timed(lambda: classifier.predict_windows(windows, batch_size=64)) for _ in range(3)) / 64
    out = {"model_ms_per_window": 1000 * whole}
    layer = FRONT_END.get(model_name)
    if layer is not None:
        part = classifier.model.get_layer(layer)
        # transfer's front end is a whole sub-model (callable as it is); fast's a layer inside the graph.
        front = part if isinstance(part, keras.Model) else keras.Model(classifier.model.inputs, part.output)
        x = windows[..., None]
        front(x, training=False)
        t = min(timed(lambda: front(x, training=False)) for _ in range(3)) / 64
        out["front_end_ms_per_window"] = 1000 * t
        out["head_ms_per_window"] = 1000 * max(whole - t, 0.0)
    return out


def bench(run_dir: Path, name: str, paths: list[Path], threads: int) -> dict:
    from genre.audio.decode import decode
    from genre.audio.windows import cut_windows
    from genre.serve import library
    from genre.serve.prediction import Classifier

    classifier = Classifier.load(run_dir)
    classifier.warm_up()
    windows = 0

    def decode_all():
        nonlocal windows
        for p in paths:
            windows += len(cut_windows(decode(p))[0])

    decode_s = timed(decode_all)
    loop_s = timed(lambda: [classifier.classify(p) for p in paths])
    batched_s = timed(lambda: list(library.classify_files(classifier, paths, "bench", threads=threads)))
    result = {
        "run": run_dir.name, "folder": name, "songs": len(paths), "windows": windows,
        "loop_songs_per_s": len(paths) / loop_s, "batched_songs_per_s": len(paths) / batched_s,
        "speed_up": loop_s / batched_s, "decode_ms_per_song": 1000 * decode_s / len(paths),
        **model_split(classifier, str(json.loads((run_dir / "config.json").read_text()).get("model"))),
    }  # fmt: skip
    result["seconds_for_1000_songs"] = 1000 / result["batched_songs_per_s"]
    print(
        f"{run_dir.name:22s} {name:10s} {len(paths):4d} songs  loop {result['loop_songs_per_s']:.2f}/s  "
        f"batched {result['batched_songs_per_s']:.2f}/s  ({result['speed_up']:.2f}x)  decode "
        f"{result['decode_ms_per_song']:.0f} ms/song  "
        + "  ".join(f"{k} {v:.1f}" for k, v in result.items() if k.endswith("ms_per_window")),
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=["models/transfer-stratified", "models/fast-stratified"])
    parser.add_argument("--generated", type=int, default=40, help="generated 30 s ogg files (default: %(default)s)")
    parser.add_argument("--gtzan", help="GTZAN-layout folder of ogg files (e.g. /work/shared/gtzan)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    results = {"load_before": os.getloadavg(), "cpus": os.cpu_count(), "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        folders = {}
        if args.generated:
            folders["generated"] = generated(Path(tmp), args.generated)
        if args.gtzan and Path(args.gtzan).is_dir():
            folders["gtzan"] = sorted(Path(args.gtzan).glob("*/*.ogg"))
        for run in args.runs:
            for name, paths in folders.items():
                results["rows"].append(bench(Path(run), name, paths, args.threads))
                if args.out:  # what is measured so far survives a stop
                    from genre.files import write_json

                    write_json(args.out, results)
    results["load_after"] = os.getloadavg()
    print(
        f"load average before {results['load_before'][0]:.2f}, after {results['load_after'][0]:.2f} on "
        f"{results['cpus']} CPUs"
    )
    if args.out:
        from genre.files import write_json

        write_json(args.out, results)


if __name__ == "__main__":
    main()
