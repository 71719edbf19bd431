"""The build: shards and manifest as the data contract says, determinism, crash safety, refusal
of a foreign output folder, bad records counted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from mcpc_builder.build import build, plan_shards, shard_bounds
from mcpc_builder.persons import PersonTable
from mcpc_builder.errors import DataError
from mcpc_builder.priors import PriorConfig
from mcpc_builder.contract import PAIRS_SCHEMA, PARTIAL_NAME, PERSONS_SCHEMA, SCHEMA_VERSION
from mcpc_builder.priors.pairs import Pairs
from mcpc_builder.writer import file_sha256, pairs_arrow

IN_PROGRESS = PARTIAL_NAME

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    from mcpc_builder.synth import write_dataset

    return write_dataset("coco", tmp_path_factory.mktemp("synth") / "coco", seed=5, n_images=28)


def _read(out: Path):
    m = json.loads((out / "manifest.json").read_text())
    persons = [pq.read_table(out / s["persons"]["file"]) for s in m["shards"]]
    pairs = [pq.read_table(out / s["pairs"]["file"]) for s in m["shards"]]
    return m, persons, pairs


def test_shard_bounds_cut_only_between_images():
    image_index = np.array([0, 0, 0, 1, 2, 2, 3, 3, 3, 3])
    # Each shard takes whole images until it holds at least shard_size persons.
    assert shard_bounds(image_index, 2) == [(0, 3), (3, 6), (6, 10)]
    assert shard_bounds(image_index, 100) == [(0, 10)]


def test_build_writes_shards_and_manifest_as_the_contract_says(coco_root, tmp_path):
    out = build(["coco"], tmp_path / "b", roots={"coco": coco_root}, shard_size=15,
                progress=False)
    m, persons, pairs = _read(out)
    assert m["schema_version"] == SCHEMA_VERSION and m["prior_config"] == PriorConfig().to_dict()
    assert len(m["shards"]) >= 2
    src = m["sources"]["coco"]
    assert src["root"] == str(Path(coco_root).resolve())
    for split, d in src["splits"].items():
        assert d["file"]["sha256"] == file_sha256(Path(src["root"]) / d["file"]["path"])
        assert d["persons_read"] == d["persons_kept"] + sum(
            v for k, v in d["persons_skipped"].items() if k != "images_without_people")
    all_ids, total_pairs = [], 0
    for shard, pt, rt in zip(m["shards"], persons, pairs):
        assert pt.schema.equals(PERSONS_SCHEMA, check_metadata=False)
        assert rt.schema.equals(PAIRS_SCHEMA, check_metadata=False)
        assert file_sha256(out / shard["persons"]["file"]) == shard["persons"]["sha256"]
        assert shard["pairs"]["rows"] == rt.num_rows
        ids = set(pt.column("person_id").to_pylist())
        # A shard holds whole images: every pair references persons of its own shard.
        assert set(rt.column("person_a").to_pylist()) <= ids
        assert set(rt.column("person_b").to_pylist()) <= ids
        all_ids += sorted(ids)
        total_pairs += rt.num_rows
        labels = np.array(rt.column("label").to_pylist())
        assert set(labels.tolist()) <= {-1, 0, 1}
        conf = np.array(rt.column("confidence").to_pylist())
        assert ((conf > 0) & (conf <= 1)).all()
    images = np.concatenate([p.column("image_id").to_numpy() for p in persons])
    assert all_ids == list(range(len(all_ids)))  # global ids 0..N-1 in order
    assert 0 < len(set(images.tolist())) <= m["totals"]["images"]
    assert total_pairs == m["totals"]["pairs"] > 0
    kept = sum(d["kept"] for d in m["labels"]["per_prior"].values())
    assert kept == total_pairs
    assert sum(m["labels"]["balance"].values()) == total_pairs
    assert not (out / IN_PROGRESS).exists()


def _table_of_images(persons_per_image: list[int]) -> PersonTable:
    n, m = sum(persons_per_image), len(persons_per_image)
    return PersonTable("coco", "train", np.repeat(np.arange(m), persons_per_image),
                       np.array([f"img/{i:03d}.jpg" for i in range(m)], object),
                       np.full(m, 640, np.int32), np.full(m, 480, np.int32),
                       np.zeros((n, 4), np.float32), np.zeros((n, 21, 2), np.float32),
                       np.zeros((n, 21), np.uint8), np.arange(n, dtype=np.int64))


def test_each_shard_carries_only_the_images_of_its_persons_and_global_ids():
    # Images 0..5 with 2, 1, 3, 1, 2, 1 persons; a shard takes whole images until >= 3 persons.
    jobs = plan_shards([_table_of_images([2, 1, 3, 1, 2, 1])], shard_size=3)
    assert [len(j.table) for j in jobs] == [3, 3, 3, 1]
    third = jobs[2].table
    assert list(third.image_paths) == ["img/003.jpg", "img/004.jpg"]
    assert third.image_index.tolist() == [0, 1, 1]  # local to the shard's images
    assert jobs[2].image_id.tolist() == [3, 4, 4]   # the source's image ids (default: index)
    assert jobs[2].person_id.tolist() == [6, 7, 8]


def test_pairs_rows_become_global_person_ids_and_prior_names():
    pairs = Pairs.make("occlusion", [0, 2], [5, 6], [1, 0], [7, 8], 1, 0.75)
    consecutive = pairs_arrow(pairs, np.array([10, 11, 12]))
    assert consecutive.column("person_a").to_pylist() == [10, 12]
    assert consecutive.column("person_b").to_pylist() == [11, 10]
    assert consecutive.column("prior").to_pylist() == ["occlusion", "occlusion"]
    scattered = pairs_arrow(pairs, np.array([7, 40, 3]))
    assert scattered.column("person_a").to_pylist() == [7, 3]
    assert scattered.column("person_b").to_pylist() == [40, 7]


def test_two_builds_give_identical_shards_and_workers_do_not_change_them(coco_root, tmp_path):
    a = build(["coco"], tmp_path / "a", roots={"coco": coco_root}, shard_size=15, progress=False)
    b = build(["coco"], tmp_path / "b", roots={"coco": coco_root}, shard_size=15, progress=False,
              workers=2)
    ma, mb = json.loads((a / "manifest.json").read_text()), json.loads(
        (b / "manifest.json").read_text())
    assert [s["persons"]["sha256"] for s in ma["shards"]] == \
        [s["persons"]["sha256"] for s in mb["shards"]]
    assert [s["pairs"]["sha256"] for s in ma["shards"]] == \
        [s["pairs"]["sha256"] for s in mb["shards"]]


def test_out_folder_holding_a_different_build_is_refused_unless_overwrite(coco_root, tmp_path):
    out = tmp_path / "b"
    build(["coco"], out, roots={"coco": coco_root}, progress=False)
    other = PriorConfig.from_dict({"enabled": ["foot_contact"]})
    with pytest.raises(DataError, match="different build"):
        build(["coco"], out, roots={"coco": coco_root}, config=other, progress=False)
    build(["coco"], out, roots={"coco": coco_root}, config=other, overwrite=True,
          progress=False)
    m = json.loads((out / "manifest.json").read_text())
    assert m["priors_enabled"] == ["foot_contact"]
    # The same build again is fine (it is rebuilt in place).
    build(["coco"], out, roots={"coco": coco_root}, config=other, progress=False)
    stray = tmp_path / "stray"
    (stray / "persons").mkdir(parents=True)
    (stray / "persons" / "part-00000.parquet").write_bytes(b"not ours")
    for overwrite in (False, True):
        with pytest.raises(DataError, match="no build recorded"):
            build(["coco"], stray, roots={"coco": coco_root}, progress=False,
                  overwrite=overwrite)
    assert (stray / "persons" / "part-00000.parquet").read_bytes() == b"not ours"


_SLOW_BUILD = """
import sys, time
import mcpc_builder.writer as writer
original = writer.write_shard
def slow(*args, **kwargs):
    entry = original(*args, **kwargs)
    time.sleep(30)  # the test kills us here, after the first shard
    return entry
writer.write_shard = slow
from mcpc_builder.build import build
build(['coco'], sys.argv[1], roots={'coco': sys.argv[2]}, shard_size=15, progress=False)
"""


def test_killed_build_leaves_nothing_complete_and_a_rerun_equals_a_clean_build(coco_root,
                                                                            tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_BUILD, str(out), str(coco_root)],
                            cwd=REPO)
    try:
        deadline = time.time() + 60
        while not (out / "persons" / "part-00000.parquet").exists():
            assert proc.poll() is None and time.time() < deadline, "build did not start"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (out / "manifest.json").exists()  # nothing looks complete
    assert (out / IN_PROGRESS).exists()
    build(["coco"], out, roots={"coco": coco_root}, shard_size=15, progress=False)
    clean = build(["coco"], tmp_path / "clean", roots={"coco": coco_root}, shard_size=15,
                  progress=False)
    mk, mc = json.loads((out / "manifest.json").read_text()), json.loads(
        (clean / "manifest.json").read_text())
    assert mk["shards"] == mc["shards"]
    assert not (out / IN_PROGRESS).exists()
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in clean.iterdir())


def _coco_file(root: Path, annotations: list[dict]) -> Path:
    from mcpc_builder.synth.coco_format import coco_category

    doc = {"images": [{"id": 1, "file_name": "000000000001.jpg", "width": 100, "height": 100}],
           "annotations": annotations, "categories": [coco_category()]}
    path = root / "annotations" / "person_keypoints_val2017.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(doc))
    return path


def _ann(ann_id, kp, bbox=(10, 10, 50, 80)):
    flat = []
    for x, y in kp:
        flat += [x, y, 2]
    return {"id": ann_id, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": list(bbox),
            "area": 100.0, "num_keypoints": 17, "keypoints": flat}


def test_bad_records_are_skipped_and_counted_in_the_manifest(tmp_path):
    good = [(30 + i, 20 + 3 * i) for i in range(17)]
    outside = list(good)
    outside[3] = (500, 20)
    nan = list(good)
    nan[5] = (float("nan"), 30)
    short = _ann(4, good)
    short["keypoints"] = short["keypoints"][:48]
    _coco_file(tmp_path / "coco", [_ann(1, good), _ann(2, outside), _ann(3, nan), short,
                                   _ann(5, good, bbox=(10, 10, 0, 80))])
    out = build(["coco"], tmp_path / "b", roots={"coco": tmp_path / "coco"}, progress=False,
                check_images=False)
    d = json.loads((out / "manifest.json").read_text())["sources"]["coco"]["splits"]["val2017"]
    assert d["persons_read"] == 5 and d["persons_kept"] == 1
    assert d["persons_skipped"] == {"bad_bbox": 1, "bad_keypoint_count": 1, "non_finite": 1,
                                    "out_of_image": 1}


def test_truncated_annotation_file_is_one_clear_error_naming_it(tmp_path):
    path = _coco_file(tmp_path / "coco", [])
    path.write_text(path.read_text()[:40])
    with pytest.raises(DataError) as err:
        build(["coco"], tmp_path / "b", roots={"coco": tmp_path / "coco"}, progress=False,
              check_images=False)
    assert "person_keypoints_val2017.json" in str(err.value)
    assert not (tmp_path / "b" / "manifest.json").exists()


def test_cli_builds_coco_and_mpii_and_prints_the_summary(coco_root, tmp_path, capsys):
    from mcpc_builder.cli import main
    from mcpc_builder.synth import write_dataset

    mpii = write_dataset("mpii", tmp_path / "mpii", seed=2, n_images=10)
    rc = main(["--sources", "coco", "mpii", "--coco-root", str(coco_root), "--mpii-root",
               str(mpii), "--out", str(tmp_path / "b"), "--quiet"])
    assert rc == 0
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert set(m["sources"]) == {"coco", "mpii"}
    persons = pq.read_table(tmp_path / "b" / m["shards"][-1]["persons"]["file"])
    assert persons.column("source").to_pylist()[-1] == "mpii"
    rc = main(["--sources", "coco", "--coco-root", str(coco_root), "--out",
               str(tmp_path / "b2")])
    assert rc == 0 and "pairs per person" in capsys.readouterr().out


def test_a_shard_failing_in_the_prior_threads_fails_the_build_and_leaves_no_shard(
        coco_root, tmp_path, monkeypatch):
    import mcpc_builder.build as build_mod

    original = build_mod.prepare_shard
    seen = []

    def failing(item):
        seen.append(item[1].index)
        if item[1].index == 2:
            raise RuntimeError("priors broke on shard 2")
        return original(item)

    monkeypatch.setattr(build_mod, "prepare_shard", failing)
    out = tmp_path / "failed"
    with pytest.raises(RuntimeError, match="shard 2"):
        build(["coco"], out, roots={"coco": coco_root}, shard_size=15, progress=False)
    assert len(seen) >= 3  # shards 0 and 1 were prepared (and perhaps written) before it
    assert not (out / "manifest.json").exists()
    assert not list(out.rglob("*.parquet")) and not (out / IN_PROGRESS).exists()
