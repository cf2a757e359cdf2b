import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nnpipe.domains.xray.sources import (
    ChecksumError,
    DataSourceError,
    RawDataset,
    check_bad_share,
    download_file,
    load_folder,
    load_medmnist,
)

CLASSES = ["normal", "pneumonia"]
CLASS_DIRS = {"normal": ["normal"], "pneumonia": ["pneumonia", "covid"]}


def write_image(path: Path, value: int, size=(24, 20), mode="L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full(size, value, dtype=np.uint8)
    arr[0, 0] = 255 - value  # distinct content per value
    img = Image.fromarray(arr)
    if mode != "L":
        img = img.convert(mode)
    img.save(path)


def test_class_folders_any_case_and_mode(tmp_path):
    write_image(tmp_path / "NORMAL" / "a.png", 10)
    write_image(tmp_path / "NORMAL" / "b.jpg", 20, mode="RGB")
    write_image(tmp_path / "COVID" / "c.png", 30, mode="RGBA")
    (tmp_path / "COVID" / "readme.txt").write_text("not an image")
    data = load_folder(tmp_path, CLASSES, CLASS_DIRS)
    assert sorted(data.labels) == [0, 0, 1]
    assert all(im.ndim == 2 for im in data.images)
    assert data.ignored == ["COVID/readme.txt"]
    assert set(data.splits) == {None}


def test_split_folders_are_kept_as_official_splits(tmp_path):
    for split in ("train", "val", "test"):
        write_image(tmp_path / split / "NORMAL" / "a.png", 10 + len(split))
        write_image(tmp_path / split / "PNEUMONIA" / "b.png", 100 + len(split))
    data = load_folder(tmp_path, CLASSES, CLASS_DIRS)
    assert sorted(set(data.splits)) == ["test", "train", "val"]


def test_labels_csv_gives_patient_ids(tmp_path):
    write_image(tmp_path / "normal" / "a.png", 10)
    write_image(tmp_path / "covid" / "b.png", 50)
    csv = tmp_path / "labels.csv"
    csv.write_text("image,label,patient_id\nnormal/a.png,normal,P1\nb.png,covid,P2\n")
    data = load_folder(tmp_path, CLASSES, CLASS_DIRS, labels_csv=csv)
    assert dict(zip(data.sources, data.patient_ids, strict=True)) == {
        "normal/a.png": "P1",
        "covid/b.png": "P2",
    }
    bad = tmp_path / "bad.csv"
    bad.write_text("file,label\n")
    with pytest.raises(DataSourceError, match="needs columns 'image' and 'patient_id'"):
        load_folder(tmp_path, CLASSES, CLASS_DIRS, labels_csv=bad)


def test_same_file_name_in_two_classes_never_borrows_a_patient_id(tmp_path):
    write_image(tmp_path / "NORMAL" / "1.png", 10)
    write_image(tmp_path / "PNEUMONIA" / "1.png", 90)
    csv = tmp_path / "labels.csv"
    csv.write_text("image,label,patient_id\nother/1.png,normal,P2\nPNEUMONIA/1.png,,P9\n")
    data = load_folder(tmp_path, CLASSES, CLASS_DIRS, labels_csv=csv)
    assert dict(zip(data.sources, data.patient_ids, strict=True)) == {
        "NORMAL/1.png": None,
        "PNEUMONIA/1.png": "P9",
    }


def test_labels_csv_that_contradicts_the_folder_is_refused(tmp_path):
    write_image(tmp_path / "normal" / "a.png", 10)
    write_image(tmp_path / "covid" / "b.png", 60)
    csv = tmp_path / "labels.csv"
    csv.write_text("image,label,patient_id\nnormal/a.png,covid,P1\ncovid/b.png,covid,P2\n")
    with pytest.raises(DataSourceError, match="disagrees with the folder"):
        load_folder(tmp_path, CLASSES, CLASS_DIRS, labels_csv=csv)


def test_split_folders_mixed_with_class_folders_are_refused(tmp_path):
    write_image(tmp_path / "train" / "NORMAL" / "a.png", 10)
    write_image(tmp_path / "NORMAL" / "b.png", 20)
    with pytest.raises(DataSourceError, match="mixes split folders"):
        load_folder(tmp_path, CLASSES, CLASS_DIRS)


def test_source_fingerprint_sees_added_files(tmp_path):
    from nnpipe.io import source_fingerprint

    write_image(tmp_path / "normal" / "a.png", 10)
    before = source_fingerprint([tmp_path, None])
    assert before == source_fingerprint([tmp_path])
    write_image(tmp_path / "normal" / "b.png", 20)
    assert source_fingerprint([tmp_path]) != before
    assert source_fingerprint([]) is None


def test_empty_missing_and_unknown_folders_are_clear_errors(tmp_path):
    with pytest.raises(DataSourceError, match="does not exist"):
        load_folder(tmp_path / "nope", CLASSES, CLASS_DIRS)
    with pytest.raises(DataSourceError, match="no class sub-folders"):
        load_folder(tmp_path, CLASSES, CLASS_DIRS)
    (tmp_path / "NORMAL").mkdir()
    with pytest.raises(DataSourceError, match="no readable PNG/JPEG"):
        load_folder(tmp_path, CLASSES, CLASS_DIRS)
    (tmp_path / "cats").mkdir()
    with pytest.raises(DataSourceError, match=r"\['cats'\] match no class"):
        load_folder(tmp_path, CLASSES, CLASS_DIRS)


def test_unreadable_images_are_counted_and_fail_past_the_allowed_share(tmp_path):
    for i in range(9):
        write_image(tmp_path / "normal" / f"{i}.png", i * 5)
    (tmp_path / "normal" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    data = load_folder(tmp_path, CLASSES, CLASS_DIRS)
    assert len(data) == 9 and data.rejected[0]["source"] == "normal/broken.png"
    check_bad_share(data, 0.2, "folder")  # 10% is tolerated
    with pytest.raises(DataSourceError, match=r"1 of 10 images \(10.0%\) are unreadable"):
        check_bad_share(data, 0.05, "folder")


def make_npz(path: Path, n=(6, 2, 2), **replace) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, count in zip(("train", "val", "test"), n, strict=True):
        arrays[f"{split}_images"] = rng.integers(0, 255, (count, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(count) % 2).reshape(-1, 1).astype(np.uint8)
    arrays.update(replace)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


def test_medmnist_layout_keeps_splits(tmp_path):
    data = load_medmnist(make_npz(tmp_path / "p.npz"), CLASSES)
    assert len(data) == 10 and data.splits.count("train") == 6
    assert data.images[0].shape == (28, 28)


@pytest.mark.parametrize(
    "replace, message",
    [
        ({"val_labels": None}, r"lacks key\(s\) \['val_labels'\]"),
        ({"test_labels": np.zeros((3, 1), np.uint8)}, "expected one label per image"),
        ({"train_images": np.zeros((6, 28), np.uint8)}, "expected \\(N, H, W\\)"),
        ({"train_labels": np.full((6, 1), 7, np.uint8)}, r"value\(s\) \[7\]"),
    ],
)
def test_medmnist_bad_files_are_clear_errors(tmp_path, replace, message):
    with pytest.raises(DataSourceError, match=message):
        load_medmnist(make_npz(tmp_path / "p.npz", **replace), CLASSES)


@pytest.fixture
def http_server(tmp_path):
    """A real HTTP server on loopback serving files from a folder, counting requests."""
    root = tmp_path / "www"
    root.mkdir()
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def test_download_verifies_checksum_and_reuses_the_cache(tmp_path, http_server):
    root, base, hits = http_server
    npz = make_npz(root / "pneumoniamnist.npz")
    md5 = hashlib.md5(npz.read_bytes()).hexdigest()
    dest = tmp_path / "cache" / "pneumoniamnist.npz"
    assert download_file(f"{base}/pneumoniamnist.npz?download=1", dest, md5) == dest
    assert load_medmnist(dest, CLASSES).labels
    download_file(f"{base}/pneumoniamnist.npz", dest, md5)
    assert len(hits) == 1  # second call served from the verified cache


def test_checksum_mismatch_leaves_nothing_behind(tmp_path, http_server):
    root, base, _ = http_server
    make_npz(root / "p.npz")
    dest = tmp_path / "cache" / "p.npz"
    with pytest.raises(ChecksumError, match=r"expected 0{32}"):
        download_file(f"{base}/p.npz", dest, "0" * 32)
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_missing_file_is_not_retried_and_unreachable_host_is(tmp_path, http_server):
    _, base, hits = http_server
    with pytest.raises(DataSourceError, match="HTTP 404"):
        download_file(f"{base}/missing.npz", tmp_path / "x.npz", "0" * 32, attempts=3)
    assert len(hits) == 1
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataSourceError, match="after 2 attempts"):
        download_file(f"http://127.0.0.1:{port}/x.npz", tmp_path / "x.npz", "0" * 32, attempts=2)


def test_a_single_array_file_is_not_an_npz(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(3))
    with pytest.raises(DataSourceError, match="single array"):
        load_medmnist(tmp_path / "x.npy", CLASSES)


def test_raw_dataset_len():
    assert len(RawDataset([np.zeros((2, 2), np.uint8)], [0], ["s"], [None], [None])) == 1
