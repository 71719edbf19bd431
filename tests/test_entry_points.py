"""One clear error line at every entry point (mcpc_builder.errors.cli_entry).

A known bad input prints exactly one line ``<prog>: error: <file>: <record>: <what>`` to stderr
and exits 2 without a traceback; Ctrl-C exits 130 with one line; a bug of ours prints one line
naming the exception (exit 1) unless WSP_DEBUG=1 asks for the traceback.
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mcpc_builder import errors
from mcpc_builder.errors import ConfigError, DataError, UsageError, cli_entry
from mcpc_fixture import one_error_line

REPO = Path(__file__).resolve().parent.parent

ENTRY_POINTS = [
    ("mcpc_builder.cli", "mcpc-build"),
    ("wsp_model.cli", "wsp-train"),
    ("wsp_model.predict", "wsp-predict"),
    ("pipelines.pretrain", "pipelines.pretrain"),
    ("pipelines.finetune", "pipelines.finetune"),
    ("pipelines.evaluate", "pipelines.evaluate"),
    ("pipelines.ablation", "pipelines.ablation"),
    ("pipelines.bench.bench_train", "pipelines.bench.bench_train"),
    ("pipelines.bench.bench_build", "pipelines.bench.bench_build"),
    ("pipelines.bench.lifting_oracle", "pipelines.bench.lifting_oracle"),
    ("pipelines.bench.mocap_priors", "pipelines.bench.mocap_priors"),
    ("pipelines.bench.library_lifting", "pipelines.bench.library_lifting"),
]


@pytest.fixture(autouse=True)
def no_debug(monkeypatch):
    monkeypatch.delenv("WSP_DEBUG", raising=False)


def failing(exc: BaseException):
    @cli_entry("prog")
    def main(argv=None):
        raise exc
    return main


# ------------------------------------------------------------------------------ the wrapper
def test_every_entry_point_main_is_wrapped():
    for module, prog in ENTRY_POINTS:
        main = importlib.import_module(module).main
        assert hasattr(main, "__wrapped_main__"), f"{module}.main is not wrapped by cli_entry"


@pytest.mark.parametrize("exc, line", [
    (DataError("a/b.json", "bbox has 3 numbers", "annotation 7"), "a/b.json: annotation 7: bbox has 3 numbers"),
    (ConfigError("c.yaml", "expected an integer, got 'x'", "line 3: train.max_steps"),
     "c.yaml: line 3: train.max_steps: expected an integer, got 'x'"),
    (UsageError("--gpus 2 but only 1 CUDA device"), "--gpus 2 but only 1 CUDA device"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "/data/x.json"),
     "/data/x.json: No such file or directory"),
    (FileNotFoundError("/data/x.json: annotation file not found"), "/data/x.json: annotation file not found"),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "/data/d"), "/data/d: Is a directory"),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/etc/passwd/x"), "/etc/passwd/x: Not a directory"),
    (PermissionError(errno.EACCES, "Permission denied", "/ro/out"), "/ro/out: Permission denied"),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/ro/x"), "/mnt/ro/x: Read-only file system"),
    (OSError(errno.ENOSPC, "No space left on device", "/full/x"), "/full/x: No space left on device"),
    (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
    (OSError(errno.EXDEV, "Invalid cross-device link", "/a/.x.1.tmp", None, "/b/x"),
     "/b/x: Invalid cross-device link"),  # a rename names the target, not our temp file
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "/proc/.x.json.123.tmp"),
     "/proc/x.json: No such file or directory"),  # so does opening the temp file
    (SystemExit("--set expects KEY=VALUE"), "--set expects KEY=VALUE"),
])
def test_known_failure_is_one_line_exit_2(exc, line, capsys):
    assert failing(exc)([]) == 2
    assert one_error_line(capsys, "prog") == line


def test_real_os_failures_name_the_path(tmp_path, capsys):
    @cli_entry("prog")
    def write(path):
        Path(path).write_text("x")

    assert write("/etc/passwd/x") == 2          # a path under a file
    assert one_error_line(capsys, "prog") == "/etc/passwd/x: Not a directory"
    assert write(str(tmp_path)) == 2            # a folder where a file is wanted
    assert one_error_line(capsys, "prog") == f"{tmp_path}: Is a directory"
    assert write("/sys/x") in (0, 2)            # read-only sysfs: refused even for root
    if not Path("/sys/x").exists():
        assert "/sys/x: " in one_error_line(capsys, "prog")
    capsys.readouterr()

    @cli_entry("prog")
    def fill():
        with open("/dev/full", "w") as fh:  # the kernel's "disk full" device
            fh.write("x" * 10)

    if Path("/dev/full").exists():
        assert fill() == 2
        assert one_error_line(capsys, "prog") == "No space left on device"

    @cli_entry("prog")
    def makedirs(path):
        os.makedirs(path)

    (tmp_path / "f").write_text("")
    assert makedirs(str(tmp_path / "f")) == 2
    assert one_error_line(capsys, "prog") == f"{tmp_path / 'f'}: File exists (a file where a folder is needed)"


def test_yaml_error_names_file_line_and_column(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\nb: 3\n")

    @cli_entry("prog")
    def main():
        with open(bad) as fh:
            yaml.safe_load(fh)

    assert main() == 2
    assert one_error_line(capsys, "prog").startswith(f"{bad}: line 2, column 2: invalid YAML:")


def test_reading_names_the_file_of_a_truncated_parquet_json_or_npz(tmp_path, capsys):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"x": list(range(100))}), good)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(good.read_bytes()[:60])
    np.savez(tmp_path / "a.npz", x=np.arange(10))
    (tmp_path / "cut.npz").write_bytes((tmp_path / "a.npz").read_bytes()[:50])
    (tmp_path / "cut.json").write_text('{"images": [1, 2')

    @cli_entry("prog")
    def read(path, how):
        with errors.reading(path, record="shard 3"):
            how(path)

    assert read(cut, pq.read_table) == 2
    assert one_error_line(capsys, "prog").startswith(f"{cut}: shard 3: ArrowInvalid: ")
    assert read(tmp_path / "cut.npz", lambda p: dict(np.load(p))) == 2
    assert one_error_line(capsys, "prog").startswith(f"{tmp_path / 'cut.npz'}: shard 3: ")
    assert read(tmp_path / "cut.json", lambda p: json.loads(Path(p).read_text())) == 2
    assert one_error_line(capsys, "prog").startswith(f"{tmp_path / 'cut.json'}: shard 3: JSONDecodeError: ")
    # an OSError that already names its file passes through reading() with its own name
    assert read(tmp_path / "absent.parquet", pq.read_table) == 2
    assert "absent.parquet" in one_error_line(capsys, "prog")


def test_ctrl_c_is_one_line_exit_130(capsys):
    assert failing(KeyboardInterrupt())([]) == 130
    err = capsys.readouterr().err
    assert err == "prog: interrupted\n"


def test_unexpected_exception_is_one_line_exit_1_and_wsp_debug_shows_the_traceback(capsys, monkeypatch):
    main = failing(ZeroDivisionError("division by zero"))
    assert main([]) == 1
    line = capsys.readouterr().err.strip()
    assert line == "prog: error: unexpected ZeroDivisionError: division by zero (set WSP_DEBUG=1 for the traceback)"
    monkeypatch.setenv("WSP_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main([])


def test_argparse_errors_and_help_keep_their_exit_codes(capsys):
    from mcpc_builder import cli

    with pytest.raises(SystemExit) as info:
        cli.main(["--no-such-option"])
    assert info.value.code == 2
    assert "usage: mcpc-build" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0


def test_successful_main_returns_its_code():
    assert cli_entry("p")(lambda: None)() == 0
    assert cli_entry("p")(lambda: 3)() == 3


# ------------------------------------------------------------------------ real entry points
def test_mcpc_build_bad_inputs_are_one_line(tmp_path, capsys):
    from mcpc_builder import cli

    assert cli.main(["--sources", "coco", "--coco-root", str(tmp_path / "nope"),
                     "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert str(tmp_path / "nope") in one_error_line(capsys, "mcpc-build")
    bad = tmp_path / "priors.yaml"
    bad.write_text("priors:\n  foot_contact:\n    min_hip_height: high\n")
    assert cli.main(["--sources", "coco", "--coco-root", str(tmp_path), "--config", str(bad),
                     "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert one_error_line(capsys, "mcpc-build") == (
        f"{bad}: line 3: priors.foot_contact.min_hip_height: expected a finite number, got 'high'")
    assert cli.main(["preview", "--build", str(tmp_path / "missing"), "--out", str(tmp_path / "p")]) == 2
    assert str(tmp_path / "missing") in one_error_line(capsys, "mcpc-build")


def test_train_set_is_typed_and_bad_values_are_one_line(tmp_path, capsys):
    from wsp_model import cli

    parser = __import__("argparse").ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--mcpc", "x", "--set", "train.lr=1e-3", "--set", "train.amp=no",
                              "--set", "data.val_splits=val2017", "--fresh"])
    cfg = cli.config_from_args(args)
    assert cfg.train.lr == 0.001 and isinstance(cfg.train.lr, float)
    assert cfg.train.amp is False and cfg.data.val_splits == ("val2017",)
    assert cfg.train.resume is False

    out = tmp_path / "run"
    assert cli.main(["--mcpc", str(tmp_path), "--out", str(out), "--set", "train.lr=abc"]) == 2
    assert one_error_line(capsys, "wsp-train") == "--set: train.lr: expected a finite number, got 'abc'"
    assert cli.main(["--mcpc", str(tmp_path), "--set", "train.max_step=5"]) == 2
    assert one_error_line(capsys, "wsp-train") == (
        "--set: train.max_step: unknown config key; did you mean 'train.max_steps'?")
    assert not out.exists()  # refused before anything was written


def test_pipelines_config_errors_name_file_and_line(tmp_path, capsys):
    from pipelines import finetune, pretrain

    cfg = tmp_path / "pre.yaml"
    cfg.write_text("train:\n  lr: 1e-3\n  batch_size: sixteen\n")
    assert pretrain.main(["--mcpc", str(tmp_path), "--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    assert one_error_line(capsys, "pipelines.pretrain") == (
        f"{cfg}: line 3: train.batch_size: expected an integer, got 'sixteen'")
    ft = tmp_path / "ft.yaml"
    ft.write_text("train:\n  max_steps: [3\n")
    assert finetune.main(["--init", "scratch", "--config", str(ft), "--out", str(tmp_path / "f")]) == 2
    assert one_error_line(capsys, "pipelines.finetune").startswith(f"{ft}: line 3, column 1: invalid YAML")


def test_evaluate_and_predict_missing_or_wrong_files_are_one_line(tmp_path, capsys):
    from pipelines import evaluate
    from wsp_model import predict

    assert evaluate.main(["--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "none.pt: checkpoint not found" in capsys.readouterr().err
    assert predict.main(["--checkpoint", str(tmp_path / "none.pt"), "--image", str(tmp_path)]) == 2
    assert "none.pt: checkpoint not found" in capsys.readouterr().err


def test_subprocess_bad_input_has_no_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("WSP_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "mcpc_builder.cli", "--sources", "coco",
                           "--coco-root", str(tmp_path / "absent"), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("mcpc-build: error: ") and "absent" in proc.stderr


def test_torchrun_relaunch_reports_the_ranks_line_not_a_launcher_traceback(tmp_path):
    script = tmp_path / "rank.py"
    script.write_text(
        "import sys\n"
        "from mcpc_builder.errors import DataError, cli_entry\n"
        "@cli_entry('prog')\n"
        "def main():\n"
        "    raise DataError('shard.parquet', 'cut short', 'rank input')\n"
        "sys.exit(main())\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop("WSP_DEBUG", None)
    # Two ranks hit the same bad input: the user sees its line once.
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(script)]
    proc = subprocess.run([sys.executable, "-c", "import sys\nfrom mcpc_builder.errors import "
                           "run_torchrun\nsys.exit(run_torchrun('prog', sys.argv[1:]))", *cmd],
                          capture_output=True, text=True, env=env, timeout=240, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "ChildFailedError" not in proc.stderr
    assert [l for l in proc.stderr.splitlines() if l.strip()] == [
        "prog: error: shard.parquet: rank input: cut short"]


def test_ranks_print_a_line_once_per_run_and_every_other_line(tmp_path, monkeypatch, capsys):
    from mcpc_builder import errors

    notes = tmp_path / "notes"
    notes.touch()
    monkeypatch.setenv(errors.RANK_ERRORS_ENV, str(notes))
    monkeypatch.setenv("WORLD_SIZE", "2")
    same = errors.DataError("shard.parquet", "cut short", "rank input")
    assert errors.report("prog", same) == 2      # rank 0
    assert errors.report("prog", same) == 2      # rank 1, same line: not printed again
    assert errors.report("prog", errors.DataError("other.parquet", "cut short")) == 2
    assert capsys.readouterr().err.splitlines() == [
        "prog: error: shard.parquet: rank input: cut short", "prog: error: other.parquet: cut short"]
    monkeypatch.setenv("WORLD_SIZE", "1")        # one process: always printed
    errors.report("prog", same)
    assert capsys.readouterr().err.count("shard.parquet") == 1


class _BadItems:
    """A dataset whose item 1 is a bad record (or a bug), read in a DataLoader worker process."""

    def __init__(self, exc):
        self.exc = exc

    def __len__(self):
        return 2

    def __getitem__(self, i):
        if i == 1:
            raise self.exc
        return i


@pytest.mark.parametrize("exc, code, line", [
    (DataError("img/7.jpg", "not a JPEG or PNG", "image 7"), 2, "prog: error: img/7.jpg: image 7: not a JPEG or PNG"),
    (ZeroDivisionError("bad maths"), 1,
     "prog: error: unexpected ZeroDivisionError in a data loader worker: bad maths "
     "(set WSP_DEBUG=1 for the traceback)"),
])
def test_error_raised_in_a_loader_worker_is_still_one_line(exc, code, line, capsys):
    from torch.utils.data import DataLoader

    @cli_entry("prog")
    def main():
        for _ in DataLoader(_BadItems(exc), batch_size=1, num_workers=1,
                            multiprocessing_context="fork"):
            pass

    assert main() == code
    err = capsys.readouterr().err
    assert err.strip() == line and "Traceback" not in err.replace("for the traceback", "")


def test_data_error_raised_in_a_worker_process_arrives_whole(capsys):
    import pickle
    from concurrent.futures import ProcessPoolExecutor

    for exc in (DataError("a.json", "bbox has 3 numbers", "annotation 4"),
                ConfigError("c.yaml", "expected an integer", "train.steps")):
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc) and str(back) == str(exc) and back.record == exc.record

    @cli_entry("prog")
    def main():
        with ProcessPoolExecutor(max_workers=1) as pool:
            pool.submit(_raise_data_error).result()

    assert main() == 2
    assert one_error_line(capsys, "prog") == "a.json: annotation 4: bbox has 3 numbers"


def _raise_data_error():
    raise DataError("a.json", "bbox has 3 numbers", "annotation 4")


def test_real_ctrl_c_in_a_process_is_one_line_exit_130(tmp_path):
    import signal

    script = ("import sys, time\n"
              "from mcpc_builder.errors import cli_entry\n"
              "@cli_entry('prog')\n"
              "def main():\n"
              "    print('ready', flush=True)\n"
              "    time.sleep(60)\n"
              "sys.exit(main())\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("WSP_DEBUG", None)
    # A shell's background job inherits SIGINT ignored, and Python then keeps it ignored (as a
    # user's terminal never does): give the child the default disposition a terminal gives.
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err == "prog: interrupted\n"


@pytest.mark.parametrize("target", ["pretrain", "preview", "bench-train"])
def test_make_targets_that_read_a_build_make_the_default_one_on_a_fresh_machine(tmp_path, target):
    # `make TARGET` with no MCPC= must work on a fresh machine (the embedded default is built at
    # the default path); with MCPC= a typed path, nothing may be generated there.
    import shutil

    if shutil.which("make") is None:
        pytest.skip("make not installed")
    out = tmp_path / "out"

    def plan(*extra: str) -> str:
        return subprocess.run(["make", "-n", target, f"OUT={out}", *extra], cwd=REPO,
                              capture_output=True, text=True, check=True).stdout

    default = plan()
    assert (f"mcpc-build --sources coco mpii --out {out}/mcpc-default" in default
            or "--default-data" in default), default
    typed = plan(f"MCPC={tmp_path}/typo")
    assert "--default-data" not in typed and f"--out {tmp_path}/typo" not in typed, typed
