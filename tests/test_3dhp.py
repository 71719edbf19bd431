"""MPI-INF-3DHP readers on the synthetic release (dataset-formats.md §4)."""

import os

import h5py
import numpy as np
import pytest
import scipy.io

from mcpc_builder import joints
from mcpc_builder.errors import DataError
from mcpc_builder.synth import mpi3dhp_format
from wsp_model import camera, mpi3dhp


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return mpi3dhp_format.write(tmp_path_factory.mktemp("3dhp"), seed=5, n_frames=12)


def test_test_annotations_are_matlab_v73_with_reversed_axes(root):
    path = root / "mpi_inf_3dhp_test_set/TS1/annot_data.mat"
    with pytest.raises(NotImplementedError):
        scipy.io.loadmat(path)
    assert path.read_bytes()[:10] == b"MATLAB 7.3"
    with h5py.File(path, "r") as f:
        assert f["annot3"].shape == (12, 1, 17, 3) and f["valid_frame"].shape == (12, 1)


def test_test_reader_keeps_valid_frames_and_univ_ground_truth(root):
    frames = mpi3dhp.read_test(root, sequences=("TS1", "TS5"))
    with h5py.File(root / "mpi_inf_3dhp_test_set/TS1/annot_data.mat", "r") as f:
        valid = f["valid_frame"][()][:, 0] == 1
        univ = f["univ_annot3"][()][:, 0]
    ts1 = frames.sequence == "TS1"
    assert ts1.sum() == valid.sum() < 12
    np.testing.assert_array_equal(frames.frame[ts1], np.flatnonzero(valid))
    np.testing.assert_allclose(frames.joints_univ[ts1], univ[valid], rtol=1e-6)
    # univ_annot3 is a rescaled annot3: same root, same directions, other bone lengths
    root_j = joints.MPI3DHP_ROOT
    np.testing.assert_allclose(frames.joints_univ[:, root_j], frames.joints_cam[:, root_j], rtol=1e-5)
    assert not np.allclose(frames.joints_univ, frames.joints_cam, atol=1.0)
    assert frames.image_paths[0].startswith("mpi_inf_3dhp_test_set/TS1/imageSequence/img_")
    assert (root / frames.image_paths[0]).exists()
    assert set(frames.activity) <= set(mpi3dhp.ACTIVITIES)


def test_fitted_test_intrinsics_reproject_the_2d(root):
    frames = mpi3dhp.read_test(root, sequences=("TS5",))
    uv = camera.project_pinhole(frames.joints_cam, frames.f[0], frames.c[0])
    np.testing.assert_allclose(uv, frames.joints_2d, atol=1e-2)
    assert frames.bbox[0, 2] > 5


def test_train_reader_selects_the_17_relevant_of_28_and_slices_extra_rows(root):
    frames = mpi3dhp.read_train(root, subjects=(2,), sequences=(1,), cameras=(0, 4))
    mat = scipy.io.loadmat(root / "S2/Seq1/annot.mat")
    n = mat["frames"].size
    a3 = mat["annot3"][4][0].reshape(-1, 28, 3)
    assert len(a3) > n  # the file holds extra rows
    sel = frames.sequence == "S2/Seq1/cam4"
    assert sel.sum() == n
    np.testing.assert_allclose(frames.joints_cam[sel][:, 14], a3[:n, 4], rtol=1e-6)    # pelvis
    np.testing.assert_allclose(frames.joints_cam[sel][:, 2], a3[:n, 14], rtol=1e-6)    # right shoulder
    # intrinsics from camera.calibration reproject the stored 2D
    uv = camera.project_pinhole(frames.joints_cam[sel], frames.f[sel][0], frames.c[sel][0])
    np.testing.assert_allclose(uv, frames.joints_2d[sel], atol=1e-2)


def test_train_frames_are_extracted_from_the_videos(root):
    frames = mpi3dhp.read_train(root, subjects=(3,), sequences=(2,), cameras=(1,))
    assert mpi3dhp.extract_frames(root, frames) == len(frames)
    assert all((root / p).exists() for p in frames.image_paths)
    assert mpi3dhp.extract_frames(root, frames) == 0  # once


def test_frames_of_a_read_only_root_are_extracted_into_the_data_cache(root, monkeypatch):
    frames = mpi3dhp.read_train(root, subjects=(3,), sequences=(2,), cameras=(2,))
    assert not any((root / p).exists() for p in frames.image_paths)
    monkeypatch.setattr(mpi3dhp.os, "access", lambda path, mode: False)  # as if not writable
    image_root = mpi3dhp.frames_root(root, frames)
    assert image_root != root and str(image_root).startswith(os.environ["WSP_DATA_HOME"])
    assert mpi3dhp.extract_frames(root, frames, image_root) == len(frames)
    assert all((image_root / p).exists() for p in frames.image_paths)
    assert not any((root / p).exists() for p in frames.image_paths)


def test_bad_test_file_names_the_file(root, tmp_path):
    bad = tmp_path / "mpi_inf_3dhp_test_set/TS1/annot_data.mat"
    bad.parent.mkdir(parents=True)
    with h5py.File(bad, "w") as f:
        f["annot2"] = np.zeros((4, 1, 16, 2))
        f["annot3"] = np.zeros((4, 1, 16, 3))
    with pytest.raises(DataError, match="annot_data.mat"):
        mpi3dhp.read_test(tmp_path, sequences=("TS1",))
