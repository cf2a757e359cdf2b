import pytest

from nnpipe.io import atomic_directory, atomic_write_json, atomic_write_text, read_json


def test_failed_directory_write_keeps_the_old_output(tmp_path):
    out = tmp_path / "out"
    with atomic_directory(out) as tmp:
        (tmp / "a.txt").write_text("first")
    with pytest.raises(RuntimeError), atomic_directory(out) as tmp:
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("interrupted")
    assert (out / "a.txt").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary left behind


def test_successful_directory_write_replaces_wholly(tmp_path):
    out = tmp_path / "out"
    with atomic_directory(out) as tmp:
        (tmp / "old.txt").write_text("x")
    with atomic_directory(out) as tmp:
        (tmp / "new.txt").write_text("y")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert oct(out.stat().st_mode & 0o777) == "0o755"


def test_atomic_file_writes(tmp_path):
    atomic_write_json(tmp_path / "d" / "m.json", {"b": 1, "a": 2})
    assert read_json(tmp_path / "d" / "m.json") == {"a": 2, "b": 1}
    assert (tmp_path / "d" / "m.json").read_text().index('"a"') < (
        tmp_path / "d" / "m.json"
    ).read_text().index('"b"')
    atomic_write_text(tmp_path / "t.txt", "hello")
    assert (tmp_path / "t.txt").read_text() == "hello"
    assert oct((tmp_path / "t.txt").stat().st_mode & 0o777) == "0o644"
