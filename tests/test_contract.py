"""The data contract: a build is a verified Parquet dataset; one reader refuses anything the
manifest does not describe; a lock refuses a second writer; synthetic data is never silent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pytest

from mcpc_builder import contract
from mcpc_builder.build import build
from mcpc_builder.errors import DataError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    from mcpc_builder.synth import write_dataset

    return write_dataset("coco", tmp_path_factory.mktemp("synth") / "coco", seed=11, n_images=14)


@pytest.fixture(scope="module")
def built(coco_root, tmp_path_factory):
    return build(["coco"], tmp_path_factory.mktemp("b") / "build", roots={"coco": coco_root},
                 shard_size=10, progress=False)


def _copy(build_dir: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(build_dir, dest)
    return dest


# ------------------------------------------------------------------ the folder is a dataset
def test_persons_and_pairs_folders_are_parquet_datasets_tools_read_directly(built):
    import pandas as pd

    m = json.loads((built / contract.MANIFEST_NAME).read_text())
    assert len(m["shards"]) >= 2
    persons = pd.read_parquet(built / contract.PERSONS_DIR)
    pairs = ds.dataset(built / contract.PAIRS_DIR, format="parquet").to_table()
    assert len(persons) == m["totals"]["persons_kept"]
    assert pairs.num_rows == m["totals"]["pairs"] > 0
    assert list(persons.columns) == contract.PERSONS_SCHEMA.names
    assert pairs.schema.names == contract.PAIRS_SCHEMA.names
    assert set(pairs.column("prior").to_pylist()) <= set(contract.PRIOR_NAMES)
    # Hidden bookkeeping files (the lock) are not part of the datasets.
    assert (built / contract.LOCK_NAME).exists()


def test_reader_returns_the_manifest_rows_in_manifest_order(built):
    b = contract.read_build(built, verify="checksums")
    assert b.persons.column("person_id").to_pylist() == list(range(b.persons.num_rows))
    assert b.pairs.num_rows == b.manifest["totals"]["pairs"]
    assert b.synthetic_sources == ["coco"]  # the root holds the synthetic writer's ground truth


def test_source_image_ids_are_kept_as_in_the_file(tmp_path):
    from mcpc_builder.synth.coco_format import coco_category

    kp = []
    for i in range(17):
        kp += [20 + 2 * i, 15 + 3 * i, 2]
    doc = {"images": [{"id": 785, "file_name": "000000000785.jpg", "width": 100, "height": 100}],
           "annotations": [{"id": 9, "image_id": 785, "category_id": 1, "iscrowd": 0,
                            "bbox": [10, 10, 60, 80], "num_keypoints": 17, "keypoints": kp}],
           "categories": [coco_category()]}
    (tmp_path / "coco" / "annotations").mkdir(parents=True)
    (tmp_path / "coco" / "annotations" / "person_keypoints_val2017.json").write_text(
        json.dumps(doc))
    out = build(["coco"], tmp_path / "b", roots={"coco": tmp_path / "coco"}, progress=False,
                check_images=False)
    b = contract.read_build(out)
    assert b.persons.column("image_id").to_pylist() == [785]
    assert b.persons.column("source_ann_id").to_pylist() == [9]
    assert b.synthetic_sources == []  # a real-looking root is not marked synthetic


# ------------------------------------------------------------------ verified reading
def test_missing_shard_is_refused_naming_it(built, tmp_path):
    b = _copy(built, tmp_path / "b")
    (b / "pairs" / "part-00001.parquet").unlink()
    with pytest.raises(DataError, match=r"pairs/part-00001.parquet: shard listed"):
        contract.read_build(b)


def test_extra_shard_is_refused_naming_it(built, tmp_path):
    b = _copy(built, tmp_path / "b")
    (b / "persons" / "part-00099.parquet").write_bytes(
        (b / "persons" / "part-00000.parquet").read_bytes())
    with pytest.raises(DataError, match=r"part-00099.parquet: file not listed"):
        contract.read_build(b)


def test_flipped_byte_is_found_by_checksum_and_a_changed_size_by_the_cheap_check(built,
                                                                               tmp_path):
    b = _copy(built, tmp_path / "b")
    shard = b / "persons" / "part-00000.parquet"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    contract.verify_build(b, "sizes")  # same size: the cheap check cannot see it
    with pytest.raises(DataError, match=r"part-00000.parquet: sha256 differs"):
        contract.read_build(b, verify="checksums")
    shard.write_bytes(bytes(data) + b"x")
    with pytest.raises(DataError, match=r"part-00000.parquet: size"):
        contract.read_build(b)


def test_row_count_and_schema_version_are_checked(built, tmp_path):
    b = _copy(built, tmp_path / "b")
    m = json.loads((b / contract.MANIFEST_NAME).read_text())
    m["shards"][0]["pairs"]["rows"] += 1
    (b / contract.MANIFEST_NAME).write_text(json.dumps(m))
    with pytest.raises(DataError, match=r"pairs/part-00000.parquet: \d+ rows, the manifest"):
        contract.read_build(b)
    m["schema_version"] = 1
    (b / contract.MANIFEST_NAME).write_text(json.dumps(m))
    with pytest.raises(DataError, match="schema_version 1"):
        contract.read_build(b)


def test_training_reader_verifies_checksums_by_default(built, tmp_path):
    from wsp_model.mcpc_data import read_build

    b = _copy(built, tmp_path / "b")
    tables = read_build(b)
    assert len(tables) > 0 and tables.synthetic_sources == ("coco",)
    shard = b / "pairs" / "part-00000.parquet"
    data = bytearray(shard.read_bytes())
    data[100] ^= 0x01
    shard.write_bytes(bytes(data))
    with pytest.raises(DataError, match="sha256 differs"):
        read_build(b)


def test_missing_build_folder_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="build folder not found"):
        contract.read_build(tmp_path / "typo")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no manifest"):
        contract.read_build(tmp_path / "empty")


# ------------------------------------------------------------------ locks
def test_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path):
    code = ("import sys; from mcpc_builder import contract\n"
            "with contract.acquire_lock(sys.argv[1], 'second'): pass\n")
    with contract.acquire_lock(tmp_path / "run", "first"):
        with contract.acquire_lock(tmp_path / "run", "nested"):  # same process: re-entrant
            pass
        second = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")], cwd=REPO,
                                capture_output=True, text=True)
        assert second.returncode != 0
        assert f"in use by process {os.getpid()}" in second.stderr
    second = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")], cwd=REPO)
    assert second.returncode == 0  # released: free again


def test_unwritable_output_is_one_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="file: exists and is not a folder|not a folder"):
        contract.acquire_lock(tmp_path / "file").__enter__()
    if os.geteuid() != 0:  # root writes anywhere
        (tmp_path / "ro").mkdir(mode=0o500)
        with pytest.raises(DataError, match="cannot write here"):
            contract.acquire_lock(tmp_path / "ro" / "out").__enter__()


def test_lock_of_a_killed_process_is_not_stale(tmp_path):
    code = ("import sys, time; from mcpc_builder import contract\n"
            "with contract.acquire_lock(sys.argv[1], 'holder'):\n"
            "    print('locked', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "out")], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(contract.FolderLocked, match=str(proc.pid)):
            build(["coco"], tmp_path / "out", roots={"coco": tmp_path}, progress=False)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with contract.acquire_lock(tmp_path / "out"):
        pass


# ------------------------------------------------------------------ builder-side safety
def test_failed_build_removes_its_files_and_its_record(coco_root, tmp_path, monkeypatch):
    from mcpc_builder import writer

    original, calls = writer.write_shard, []

    def fail_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return original(*args, **kwargs)

    monkeypatch.setattr(writer, "write_shard", fail_second)
    out = tmp_path / "b"
    (out).mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OSError, match="No space left"):
        build(["coco"], out, roots={"coco": coco_root}, shard_size=10, progress=False)
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert left == [contract.LOCK_NAME, "notes.txt"]


def test_rerun_removes_only_files_its_build_recorded(coco_root, tmp_path):
    out = build(["coco"], tmp_path / "b", roots={"coco": coco_root}, shard_size=10,
                progress=False)
    (out / "persons-00000.parquet").write_bytes(b"a user file named like an old shard")
    build(["coco"], out, roots={"coco": coco_root}, shard_size=10, progress=False,
          overwrite=True)
    assert (out / "persons-00000.parquet").read_bytes().startswith(b"a user file")
    contract.read_build(out, verify="checksums")


def test_worker_processes_die_with_a_killed_parent(tmp_path):
    code = ("import os, sys, time\n"
            "from mcpc_builder.build import process_pool\n"
            "pool = process_pool(2)\n"
            "pids = {pool.submit(os.getpid).result() for _ in range(8)}\n"
            "for _ in range(2): pool.submit(time.sleep, 120)\n"
            "print(' '.join(map(str, sorted(pids))), flush=True)\n"
            "time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                            text=True)
    workers = [int(p) for p in proc.stdout.readline().split()]
    assert workers and proc.pid not in workers
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    def alive(pid: int) -> bool:
        try:
            state = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return False
        return "\nState:\tZ" not in state  # a zombie is dead, only not yet reaped

    deadline = time.time() + 10
    while any(alive(p) for p in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in workers)


# ------------------------------------------------------------------ synthetic never silent
def test_a_root_for_one_source_and_not_the_other_is_an_error_saying_what_to_add(tmp_path):
    (tmp_path / "coco").mkdir()
    with pytest.raises(DataError) as err:
        build(["coco", "mpii"], tmp_path / "b", roots={"coco": tmp_path / "coco"},
              progress=False)
    assert "--mpii-root" in str(err.value) and "--synthetic mpii" in str(err.value)
    assert not (tmp_path / "b").exists()


def test_cli_refuses_a_half_given_build_with_exit_2(tmp_path, capsys):
    from mcpc_builder.cli import main

    (tmp_path / "coco").mkdir()
    rc = main(["--sources", "coco", "mpii", "--coco-root", str(tmp_path / "coco"), "--out",
               str(tmp_path / "b"), "--quiet"])
    assert rc == 2
    assert "add --mpii-root DIR" in capsys.readouterr().err
    rc = main(["--sources", "coco", "--coco-root", str(tmp_path / "typo"), "--out",
               str(tmp_path / "b"), "--quiet"])
    assert rc == 2 and "root folder not found" in capsys.readouterr().err


def test_explicit_synthetic_opt_in_is_recorded_and_printed(coco_root, tmp_path, monkeypatch,
                                                           capsys):
    from mcpc_builder import default_data
    from mcpc_builder.synth import write_dataset

    mpii = write_dataset("mpii", tmp_path / "mpii", seed=3, n_images=6)
    monkeypatch.setattr(default_data, "default_root", lambda fmt: mpii)
    out = build(["coco", "mpii"], tmp_path / "b", roots={"coco": coco_root},
                synthetic=["mpii"], progress=True)
    m = contract.read_manifest(out)
    assert m["sources"]["mpii"]["synthetic_reason"] == "embedded synthetic default"
    assert m["synthetic_sources"] == ["coco", "mpii"]
    printed = capsys.readouterr().out
    assert "SYNTHETIC DATA: mpii is embedded synthetic default" in printed


def test_pretrain_never_generates_data_at_a_typed_path(tmp_path):
    from pipelines.pretrain import ensure_build

    with pytest.raises(DataError, match="MCPC build folder not found"):
        ensure_build(tmp_path / "typo")
    assert not (tmp_path / "typo").exists()


# ------------------------------------------------------------------ ground-truth sidecar
def test_both_synthetic_writers_follow_the_one_sidecar_format(coco_root, tmp_path):
    from mcpc_builder.synth import write_dataset

    mpii = write_dataset("mpii", tmp_path / "mpii", seed=4, n_images=4)
    for path in [*sorted((Path(coco_root) / "ground_truth").glob("*.npz")),
                 *sorted((mpii / "ground_truth").glob("*.npz"))]:
        gt = contract.read_ground_truth(path)
        assert gt["joints_cam"].shape == (len(gt["ann_id"]), 21, 3)
    with pytest.raises(ValueError, match="lacks joints_cam"):
        contract.write_ground_truth(tmp_path / "gt.npz", {"ann_id": np.zeros(1)})
