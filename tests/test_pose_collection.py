"""`mcpc-build library`: many motion-capture files -> one pose library of distinct poses."""

from __future__ import annotations

import numpy as np
import pytest

from mcpc_builder.cli import main as cli_main
from mcpc_builder.errors import DataError
from mcpc_builder.joints import BODY_POINTS
from mcpc_builder.pose_collection import collect, distinct, find_inputs
from mcpc_builder.synth.pose_library import library_stature, load_pose_library
from mcpc_fixture import one_error_line
from test_synth_worlds import write_library

B = {n: i for i, n in enumerate(BODY_POINTS)}


def _moved_copy(src, dst, scale: float, yaw: float, shift):
    """The same poses in other units (x ``scale``), turned by ``yaw`` about Z and moved."""
    with np.load(src) as d:
        doc = {k: d[k] for k in d.files}
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    doc["joints"] = ((doc["joints"] @ rot.T) * scale + np.asarray(shift) * scale).astype(
        np.float32)
    np.savez(dst, **doc)
    return dst


def test_one_body_and_near_duplicates_kept_once_whatever_units_yaw_or_place(tmp_path):
    a = write_library(tmp_path / "a.npz", n=6, seed=0)
    _moved_copy(a, tmp_path / "b_cm.npz", 100.0, 0.7, [2.0, -1.0, 0.0])
    lib = collect([tmp_path], stature=1.70, progress=False)          # the folder: a, b_cm
    assert [str(p) for p in lib["sources"]] == [str(tmp_path / "a.npz"),
                                                 str(tmp_path / "b_cm.npz")]
    # b_cm holds the same six poses in centimetres, turned and moved: none is new.
    assert int(lib["poses_read"]) == 12 and len(lib["joints"]) == 6
    assert (lib["source"] == 0).all() and list(lib["frame"]) == list(range(6))
    out = tmp_path / "out" / "lib.npz"
    out.parent.mkdir()
    np.savez(out, **lib)
    merged = load_pose_library(str(out))
    assert library_stature(merged.joints) == pytest.approx(1.70, rel=1e-3)
    hip = merged.joints[:, B["left_hip"], :2] - merged.joints[:, B["right_hip"], :2]
    assert np.allclose(hip[:, 1], 0, atol=1e-5) and (hip[:, 0] > 0).all()   # hip line along +x
    assert np.allclose(merged.joints[:, B["pelvis"], :2], 0, atol=1e-5)
    everything = collect([tmp_path / "a.npz", tmp_path / "b_cm.npz"], min_distance=0,
                         progress=False)
    assert len(everything["joints"]) == 12 and list(everything["source"]) == [0] * 6 + [1] * 6


def test_distinct_keeps_greedily_in_order_across_blocks():
    base = np.zeros((len(BODY_POINTS), 3))
    base[:, 2] = np.linspace(0, 1.7, len(BODY_POINTS))
    poses = np.repeat(base[None], 4, axis=0)
    step = 0.15  # moving one joint by d: RMS joint distance d / sqrt(22) (0.032 m per step)
    for k in range(4):
        poses[k, B["left_wrist"], 0] += k * step
    for block in (1, 2, 1024):
        # 1 is blocked by 0 (0.032 m); 2 is 0.064 m from 0: kept; 3 is blocked by 2.
        assert list(distinct(poses, 0.05, block=block)) == [0, 2]
    assert list(distinct(poses, 0.03, block=2)) == [0, 1, 2, 3]


def test_inputs_are_found_sorted_without_repeats_and_bad_ones_named(tmp_path):
    (tmp_path / "lib" / "sub").mkdir(parents=True)
    write_library(tmp_path / "lib" / "z.npz", n=3)
    write_library(tmp_path / "lib" / "sub" / "a.npz", n=3)
    (tmp_path / "lib" / "notes.txt").write_text("not mocap")
    found = find_inputs([tmp_path / "lib", tmp_path / "lib" / "z.npz"])
    assert found == [tmp_path / "lib" / "sub" / "a.npz", tmp_path / "lib" / "z.npz"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .bvh or .npz files"):
        find_inputs([tmp_path / "empty"])
    with pytest.raises(DataError, match="a .bvh or .npz file"):
        find_inputs([tmp_path / "lib" / "notes.txt"])
    with pytest.raises(DataError, match="not found"):
        find_inputs([tmp_path / "nowhere"])


def test_cli_writes_a_library_the_prior_reads_and_names_a_bad_file(tmp_path, capsys):
    from mcpc_builder.priors import PriorConfig
    from mcpc_builder.priors.pose_library import load_index

    (tmp_path / "in").mkdir()
    write_library(tmp_path / "in" / "walks.npz", n=6)
    out = tmp_path / "lib.npz"
    assert cli_main(["library", "--out", str(out), "--quiet", str(tmp_path / "in")]) == 0
    said = capsys.readouterr().out
    assert "read 1 files, 6 poses; kept 6 distinct poses" in said and str(out) in said
    config = PriorConfig().with_pose_library(str(out))
    assert len(load_index(config.pose_library)) == 6 * 2 * config.pose_library.views
    truncated = tmp_path / "in" / "broken.npz"
    truncated.write_bytes((tmp_path / "in" / "walks.npz").read_bytes()[:200])
    assert cli_main(["library", "--out", str(tmp_path / "again.npz"), "--quiet",
                     str(tmp_path / "in")]) == 2
    line = one_error_line(capsys, "mcpc-build")
    assert str(truncated) in line
    assert not (tmp_path / "again.npz").exists()


def test_bvh_clips_in_centimetres_join_a_metre_library_as_one_body(tmp_path):
    pytest.importorskip("pybvh")
    from test_synth_worlds import _bvh_text

    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "walk01.bvh").write_text(_bvh_text())   # ~cm units, 3 frames
    write_library(tmp_path / "m.npz", n=3)
    lib = collect([tmp_path / "clips", tmp_path / "m.npz"], min_distance=0, progress=False)
    assert int(lib["poses_read"]) == 6 and list(lib["source"]) == [0, 0, 0, 1, 1, 1]
    assert list(lib["activity"][:3]) == ["walk"] * 3
    # Both bodies at the same stature: their thighs are about the same length in metres.
    thigh = np.linalg.norm(lib["joints"][:, B["left_knee"]] - lib["joints"][:, B["left_hip"]],
                           axis=1)
    assert 0.3 < thigh.min() and thigh.max() < 0.6


def test_skip_bad_leaves_unreadable_files_out_and_lists_them(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    write_library(tmp_path / "in" / "good.npz", n=3)
    (tmp_path / "in" / "bad.npz").write_bytes(b"not a zip")
    out = tmp_path / "lib.npz"
    assert cli_main(["library", "--out", str(out), "--quiet", "--skip-bad",
                     str(tmp_path / "in")]) == 0
    said = capsys.readouterr().out
    assert "skipped 1 unreadable files" in said and "bad.npz" in said
    with np.load(out) as lib:
        assert [str(s) for s in lib["sources"]] == [str(tmp_path / "in" / "good.npz")]
        assert len(lib["skipped"]) == 1 and "bad.npz: pose library: not a .npz" in lib["skipped"][0]
    (tmp_path / "in" / "good.npz").unlink()
    with pytest.raises(DataError, match="none of the 1 input files could be read"):
        collect([tmp_path / "in"], skip_bad=True, progress=False)


def test_a_corrupted_member_of_a_library_archive_is_one_data_error_naming_it(tmp_path):
    from mcpc_builder.pose_collection import read_input

    data = bytearray(write_library(tmp_path / "ok.npz", n=3).read_bytes())
    data[200:260] = b"\x00" * 60  # inside the first member: the zip directory is intact
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"bad\.npz: .*(CRC|zip|pickle|npy|read)"):
        read_input(bad)
