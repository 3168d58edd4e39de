"""Print RESULTS.md's table of shipped runs from their own files: ``python bench/results_table.py``."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from genre.files import read_json  # noqa: E402
from genre.jobs.runs import list_runs  # noqa: E402


def training_seconds(run_dir: Path) -> float:
    """Wall time of the epochs, over all folds of a cross-validation run."""
    folds = sorted(run_dir.glob("fold-*"))
    histories = (
        [read_json(d / "history.json", []) for d in folds] if folds else [read_json(run_dir / "history.json", [])]
    )
    return sum(e.get("seconds", 0) for h in histories for e in h)


def songs(run) -> str:
    split = run.split()
    if "folds" in split:
        return f"{len(split['folds'])}-fold: {sum(len(f['test']) for f in split['folds'])} (each once)"
    return f"{len(split['train'])}+{len(split['valid'])} / {len(split['test'])}"


def main() -> None:
    print(
        "| run | model | protocol | songs train+valid / test | song acc (vote) | song acc (mean prob.) | window acc "
        "| song balanced acc | song macro F1 | window balanced acc | window macro F1 | parameters | epochs | "
        "training time |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for run in sorted(list_runs(REPO / "models"), key=lambda r: r.run_id):
        m = run.metrics
        if not m:
            continue
        epochs = len(run.history())
        planned = run.config["train"]["epochs"]
        print(
            f"| `{run.run_id}` | {run.config['model']} | {run.config['protocol']} | {songs(run)} | "
            f"{m['song_accuracy_vote']:.1%} | {m['song_accuracy_mean']:.1%} | {m['window_accuracy']:.1%} | "
            f"{m['song_balanced_accuracy']:.1%} | {m['song_macro_f1']:.3f} | {m['window_balanced_accuracy']:.1%} | "
            f"{m['window_macro_f1']:.3f} | {run.config['parameters']:,} | "
            f"{epochs if epochs == planned else f'{epochs} of {planned}'} | "
            f"{training_seconds(run.path) / 60:.1f} min |"
        )
    honest()


def honest() -> None:
    """The figures a user can trust: band-limited test songs, artists never heard."""
    print()
    print(
        "| run | song acc (vote), full band | low-passed at 11 kHz | low-passed at 8 kHz | multi-artist genres "
        "(song acc) |"
    )
    print("|---|---|---|---|---|")
    for run in sorted(list_runs(REPO / "models"), key=lambda r: r.run_id):
        m = run.metrics
        if not m:
            continue
        limited = m.get("band_limited", {})
        cells = [
            f"{limited[hz]['song_accuracy_vote']:.1%}" if hz in limited else "not measured" for hz in ("11000", "8000")
        ]
        multi = m.get("multi_artist")
        multi_cell = (
            f"{multi['song_accuracy_vote']:.1%} ({len(multi['genres'])} genres, {multi['songs']} songs)"
            if multi
            else "n/a"
        )
        print(f"| `{run.run_id}` | {m['song_accuracy_vote']:.1%} | {cells[0]} | {cells[1]} | {multi_cell} |")


if __name__ == "__main__":
    main()
