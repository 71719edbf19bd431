import errno
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mcpc_builder import atomic  # noqa: E402


def test_write_bytes_replaces_the_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "a.json"
    atomic.write_json(path, {"x": 1})
    atomic.write_json(path, {"x": 2}, indent=2)
    assert path.read_text() == '{\n  "x": 2\n}\n'
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.json"]


def test_save_figure_writes_a_png_despite_the_temp_suffix_and_closes_it(tmp_path):
    fig = plt.figure()
    out = atomic.save_figure(fig, tmp_path / "f.png", dpi=20)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"]


def test_save_npz_keeps_the_exact_name(tmp_path):
    atomic.save_npz(tmp_path / "gt.npz", a=np.arange(3))
    assert np.array_equal(np.load(tmp_path / "gt.npz")["a"], np.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["gt.npz"]


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("write", [
    lambda p: atomic.write_json(p, {"x": 1}),
    lambda p: atomic.save_npz(p, a=np.arange(3)),
    lambda p: atomic.save_figure(plt.figure(), p),
])
def test_a_full_disk_removes_the_temporary_and_names_the_target(tmp_path, monkeypatch, write):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")  # the previous file stays whole
    monkeypatch.setattr(atomic.os, "replace", _disk_full)  # the last step of every write
    with pytest.raises(OSError) as caught:
        write(target)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    assert target.read_bytes() == b"old"


def test_a_full_disk_mid_write_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    import io

    from mcpc_builder.errors import report

    class FullFile(io.FileIO):
        def write(self, data):
            _disk_full()

    monkeypatch.setattr("builtins.open", lambda f, mode="r", *a, **k: FullFile(f, mode.replace("b", "")))
    target = tmp_path / "x.json"
    with pytest.raises(OSError) as caught:
        atomic.write_json(target, {"x": 1})
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []  # neither the target nor the temporary
    assert report("prog", caught.value) == 2
    assert capsys.readouterr().err == f"prog: error: {target}: No space left on device\n"


def test_temp_names_map_back_to_their_target(tmp_path):
    tmp = atomic.temp_path(tmp_path / "part-00001.parquet")
    assert atomic.temp_target(tmp.name) == "part-00001.parquet"
    assert atomic.is_temp_of(tmp.name, "part-00001.parquet")
    assert not atomic.is_temp_of(tmp.name, "part-00002.parquet")
    tmp.write_bytes(b"x")
    assert list(tmp_path.glob(atomic.temp_glob(tmp_path / "part-00001.parquet"))) == [tmp]
    for other in ("part-00001.parquet", ".x.tmp", ".x.abc.tmp", "x.1.tmp"):
        assert atomic.temp_target(other) is None


def test_remove_tree_unlinks_a_link_to_a_folder_and_never_empties_its_target(tmp_path):
    from mcpc_builder.atomic import remove_tree

    target = tmp_path / "big-disk" / "mcpc"
    target.mkdir(parents=True)
    (target / "keep.parquet").write_bytes(b"someone's data")
    link = tmp_path / "out" / "mcpc"
    link.parent.mkdir()
    link.symlink_to(target, target_is_directory=True)
    remove_tree(link)
    assert not link.exists() and not link.is_symlink()
    assert (target / "keep.parquet").read_bytes() == b"someone's data"
    remove_tree(target)
    assert not target.exists()
    remove_tree(tmp_path / "nowhere")  # nothing there: nothing to do
    (tmp_path / "file").write_text("x")
    remove_tree(tmp_path / "file")
    assert not (tmp_path / "file").exists()
