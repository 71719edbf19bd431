import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

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
