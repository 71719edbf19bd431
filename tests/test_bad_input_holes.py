"""Bad inputs found by the project's attacker (issue 12): each is one line on stderr naming the
file or the option, exit 2, no traceback, and nothing written."""

import json
import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from mcpc_fixture import one_error_line, write_tiny_build  # noqa: E402

from mcpc_builder import cli as mcpc_cli  # noqa: E402
from mcpc_builder.contract import file_sha256  # noqa: E402


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return write_tiny_build(tmp_path_factory.mktemp("holes") / "a")


# ------------------------------------------------------------------------------ builder
@pytest.mark.parametrize("option, value, words", [
    ("--workers", "0", "at least 1, got 0"), ("--workers", "-3", "at least 1, got -3"),
    ("--shard-size", "0", "at least 1, got 0"), ("--shard-size", "-1", "at least 1, got -1"),
    ("--max-persons-per-image", "0", "at least 1, got 0"),
])
def test_build_counts_below_one_are_usage_errors(tmp_path, capsys, option, value, words):
    out = tmp_path / "out"
    rc = mcpc_cli.main(["--sources", "coco", "--coco-root", str(tmp_path), "--out", str(out),
                        f"{option}={value}", "--quiet"])
    assert rc == 2 and one_error_line(capsys, "mcpc-build") == f"{option}: must be {words}"
    assert not out.exists()


def test_preview_of_a_truncated_manifest_names_the_manifest(build, tmp_path, capsys):
    copy = tmp_path / "build"
    copy.mkdir()
    for sub in ("persons", "pairs"):
        (copy / sub).symlink_to(build / sub)
    (copy / "manifest.json").write_bytes((build / "manifest.json").read_bytes()[:50])
    rc = mcpc_cli.main(["preview", "--build", str(copy), "--out", str(tmp_path / "p")])
    line = one_error_line(capsys, "mcpc-build")
    assert rc == 2 and line.startswith(f"{copy / 'manifest.json'}: invalid JSON")
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("n", ["0", "-1"])
def test_preview_n_below_one_is_a_usage_error_and_writes_nothing(build, tmp_path, capsys, n):
    out = tmp_path / "p"
    rc = mcpc_cli.main(["preview", "--build", str(build), "--out", str(out), f"--n={n}"])
    assert rc == 2 and one_error_line(capsys, "mcpc-build") == f"--n: must be at least 1, got {n}"
    assert not out.exists()


def test_preview_of_a_missing_build_creates_no_output_folder(tmp_path, capsys):
    out = tmp_path / "p"
    rc = mcpc_cli.main(["preview", "--build", str(tmp_path / "missing"), "--out", str(out)])
    assert rc == 2 and one_error_line(capsys, "mcpc-build").startswith(str(tmp_path / "missing"))
    assert not out.exists()


# ----------------------------------------------------------------------------- training
def _copy_with_truncated_persons(build, dest: Path, update_manifest: bool) -> Path:
    import shutil

    shutil.copytree(build, dest)
    part = dest / "persons" / "part-00000.parquet"
    part.write_bytes(part.read_bytes()[:100])
    if update_manifest:  # sizes and checksums agree: only reading the file finds it broken
        manifest = json.loads((dest / "manifest.json").read_text())
        manifest["shards"][0]["persons"].update(bytes=100, sha256=file_sha256(part))
        (dest / "manifest.json").write_text(json.dumps(manifest))
    return part


@pytest.mark.parametrize("update_manifest", [False, True])
def test_pretrain_on_a_truncated_persons_part_names_that_part(build, tmp_path, capsys,
                                                              update_manifest):
    from pipelines import pretrain

    part = _copy_with_truncated_persons(build, tmp_path / "build", update_manifest)
    rc = pretrain.main(["--mcpc", str(tmp_path / "build"), "--out", str(tmp_path / "run"),
                        "--set", "train.max_steps=1", "--skip-unlabelled-eval"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith(f"pipelines.pretrain: error: {part}: ")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


@pytest.mark.parametrize("module, prog", [("pipelines.pretrain", "pipelines.pretrain"),
                                          ("wsp_model.cli", "wsp-train"),
                                          ("pipelines.finetune", "pipelines.finetune")])
def test_negative_gpus_is_a_usage_error(build, tmp_path, capsys, module, prog):
    import importlib

    main = importlib.import_module(module).main
    args = ["--out", str(tmp_path / "run"), "--gpus=-1"]
    args += ["--init", "scratch"] if prog == "pipelines.finetune" else ["--mcpc", str(build)]
    assert main(args) == 2
    assert one_error_line(capsys, prog) == "--gpus: must be at least 0, got -1"
    assert not (tmp_path / "run").exists()


def test_evaluate_refuses_a_pretraining_checkpoint_naming_it(tmp_path, capsys):
    from pipelines import evaluate

    ckpt = tmp_path / "pre.pt"
    torch.save({"model": {}, "meta": {"kind": "pretrain"}}, ckpt)
    rc = evaluate.main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "eval")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"evaluate: error: {ckpt}: a pre-training checkpoint; evaluate needs "
                          "a fine-tuned one")
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize("option, value", [("--batch-size", "0"), ("--batch-size", "-4"),
                                           ("--figures", "-1")])
def test_evaluate_counts_out_of_range_are_usage_errors(tmp_path, capsys, option, value):
    from pipelines import evaluate

    ckpt = tmp_path / "pre.pt"
    torch.save({"model": {}, "meta": {"kind": "pretrain"}}, ckpt)
    assert evaluate.main(["--checkpoint", str(ckpt), f"{option}={value}"]) == 2
    assert one_error_line(capsys, "pipelines.evaluate").startswith(f"{option}: must be at least")


# ------------------------------------------------------------------------ synth / render
@pytest.mark.parametrize("content, words", [
    (None, "no such world config file"),
    ("distance: [3, 8\n", "line 2, column 1: invalid YAML"),
    ("distance: hello\n", "distance: expected a list of 2 values"),
])
def test_synth_names_a_bad_world_config_once(tmp_path, capsys, content, words):
    world = tmp_path / "world.yaml"
    if content is not None:
        world.write_text(content)
    out = tmp_path / "out"
    rc = mcpc_cli.main(["synth", "--format", "coco", "--out", str(out), "--world-config",
                        str(world), "--n-images", "1", "--quiet"])
    line = one_error_line(capsys, "mcpc-build")
    assert rc == 2 and line.startswith(f"{world}: ") and words in line
    assert line.count(str(world)) == 1
    assert not out.exists()


def test_synth_into_an_unwritable_place_names_out_not_the_temporary(capsys):
    rc = mcpc_cli.main(["synth", "--format", "coco", "--out", "/proc/x", "--n-images", "1",
                        "--quiet"])
    line = one_error_line(capsys, "mcpc-build")
    assert rc == 2 and line.startswith("/proc/x: cannot write here") and ".x-" not in line


@pytest.mark.parametrize("people, words", [("0", "at least 1, got 0"),
                                           ("-2", "at least 1, got -2"),
                                           ("100000", "at most 50, got 100000")])
def test_render_people_out_of_range_is_a_usage_error(tmp_path, capsys, people, words):
    out = tmp_path / "scene.png"
    assert mcpc_cli.main(["render", "--out", str(out), f"--people={people}"]) == 2
    assert one_error_line(capsys, "mcpc-build") == f"--people: must be {words}"
    assert not out.exists()


def test_render_prints_no_matplotlib_warning(tmp_path, capsys):
    import logging

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("matplotlib").addHandler(handler)
    try:
        assert mcpc_cli.main(["render", "--out", str(tmp_path / "s.png"), "--people", "2"]) == 0
    finally:
        logging.getLogger("matplotlib").removeHandler(handler)
    captured = capsys.readouterr()
    assert captured.err == "" and not [r for r in records if r.levelno >= logging.WARNING]
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


# ------------------------------------------------------------------------------- benches
@pytest.mark.parametrize("option, value", [("--batches", "0"), ("--steps", "0"),
                                           ("--repeats", "0"), ("--workers", "0")])
def test_bench_train_counts_below_one_are_usage_errors(tmp_path, capsys, option, value):
    from pipelines.bench import bench_train

    out = tmp_path / "bench"
    assert bench_train.main(["--mcpc", str(tmp_path / "none"), "--out", str(out),
                             f"{option}={value}"]) == 2
    assert one_error_line(capsys, "pipelines.bench.bench_train") == \
        f"{option}: must be at least 1, got {value}"
    assert not out.exists() and not (tmp_path / "none").exists()


@pytest.mark.parametrize("option, value", [("--scale", "0"), ("--scale", "-1"),
                                           ("--scale", "nan"), ("--baseline-fraction", "0"),
                                           ("--baseline-fraction", "1.5")])
def test_bench_build_scale_out_of_range_is_a_usage_error(tmp_path, capsys, option, value):
    from pipelines.bench import bench_build

    out = tmp_path / "bench"
    assert bench_build.main(["--out", str(out), f"{option}={value}"]) == 2
    line = one_error_line(capsys, "pipelines.bench.bench_build")
    assert line.startswith(f"{option}: ") and (value in line or str(float(value)) in line
                                               or math.isnan(float(value)))
    assert not out.exists()
