"""Scanning the GTZAN layout and the decoded-song cache."""

import numpy as np
import pytest

from genre.audio.decode import decode
from genre.data import dataset
from genre.data.dataset import DatasetError, is_cached, load_dataset, scan
from synth import make_dataset


def test_scan_reads_the_gtzan_layout(synth_root):
    tracks = scan(synth_root)
    assert len(tracks) == 18
    assert tracks[0].track_id == "clicks/clicks.00000" and tracks[0].genre == "clicks"
    assert [t.track_id for t in tracks] == sorted(t.track_id for t in tracks)


def test_cache_round_trip_matches_decoding_and_reloads_without_decoding(tmp_path, monkeypatch):
    root = make_dataset(tmp_path / "data", songs=3)
    (root / "noise" / "noise.00009.wav").write_bytes(b"not audio" * 50)  # a track that fails
    cache = load_dataset(root, cache_root=tmp_path / "cache", workers=2, progress=False)
    assert cache.genres == ["clicks", "drones", "noise"]
    assert len(cache) == 9 and list(cache.failed) == ["noise/noise.00009"]
    i = cache.index_of("drones/drones.00001")
    np.testing.assert_array_equal(cache.song(i), decode(root / "drones" / "drones.00001.wav"))
    assert cache.labels[i] == 1
    assert cache.path_of("drones/drones.00001") == root / "drones" / "drones.00001.wav"

    # A reload maps the file; it decodes nothing (a decode now would fail the test).
    def no_decoding(*args, **kwargs):
        raise AssertionError("a cached dataset was decoded again")

    monkeypatch.setattr(dataset, "_build", no_decoding)
    again = load_dataset(root, cache_root=tmp_path / "cache", progress=False)
    assert again.folder == cache.folder and isinstance(again.audio, np.memmap)
    assert is_cached(root, cache_root=tmp_path / "cache") and not is_cached(
        tmp_path / "elsewhere", cache_root=tmp_path / "cache"
    )


def test_cache_is_rebuilt_when_a_file_changes(tmp_path):
    root = make_dataset(tmp_path / "data", songs=2)
    first = load_dataset(root, cache_root=tmp_path / "cache", progress=False)
    path = root / "clicks" / "clicks.00000.wav"
    path.write_bytes(path.read_bytes())  # same content, new mtime
    second = load_dataset(root, cache_root=tmp_path / "cache", progress=False)
    assert second.folder != first.folder


@pytest.mark.parametrize(
    "layout, message",
    [
        (None, "dataset folder not found"),
        ([], "no genre subfolders"),
        (["drones"], "only one genre"),
    ],
)
def test_bad_folders_are_refused_with_a_reason(tmp_path, layout, message):
    root = tmp_path / "data"
    if layout is not None:
        root.mkdir()
        make_dataset(root, genres=layout, songs=1)
    with pytest.raises(DatasetError, match=message):
        scan(root)


def test_songs_stored_out_of_track_order_read_back_whole(tmp_path):
    """Songs are appended in decoding-completion order, so the last track id need not be the
    last song in the file; every song must still read back at its full length."""
    from genre.data.dataset import SongCache
    from genre.files import write_json

    b, a = np.arange(3, dtype=np.float32), np.arange(10, 12, dtype=np.float32)
    (tmp_path / "audio.f32").write_bytes(b.tobytes() + a.tobytes())
    write_json(
        tmp_path / "index.json",
        {
            "root": str(tmp_path),
            "sample_rate": 22050,
            "genres": ["a", "b"],
            "track_ids": ["a/1", "b/1"],
            "offsets": [3, 0],
            "lengths": [2, 3],
            "failed": {},
        },
    )
    cache = SongCache(tmp_path)
    np.testing.assert_array_equal(cache.song(cache.index_of("a/1")), a)
    np.testing.assert_array_equal(cache.song(cache.index_of("b/1")), b)
