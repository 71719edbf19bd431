"""The shared YAML / dict -> frozen dataclass loader (mcpc_builder.config_io)."""

from __future__ import annotations

import enum
from dataclasses import FrozenInstanceError, dataclass, field
from typing import Literal, Optional

import pytest

from mcpc_builder import config_io
from mcpc_builder.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    ratio: float = 0.5
    sizes: tuple[tuple[int, int], ...] = ((4, 3),)


@dataclass(frozen=True)
class Outer:
    name: str = "a"
    weights: tuple[float, ...] = (1.0,)
    inner: Inner = field(default_factory=Inner)


def test_nested_mapping_builds_nested_frozen_dataclass_and_keeps_defaults():
    cfg = config_io.from_dict(Outer, {"inner": {"ratio": 2}})
    assert cfg == Outer(inner=Inner(ratio=2.0))
    assert isinstance(cfg.inner.ratio, float)  # an int given for a float field becomes a float
    assert cfg.name == "a" and cfg.weights == (1.0,)
    with pytest.raises(FrozenInstanceError):
        cfg.inner.ratio = 3.0


def test_yaml_lists_become_tuples_element_wise(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("weights: [1, 2.5]\ninner:\n  sizes: [[640, 480], [8, 6]]\n")
    cfg = config_io.load_yaml(Outer, path)
    assert cfg.weights == (1.0, 2.5) and isinstance(cfg.weights, tuple)
    assert cfg.inner.sizes == ((640, 480), (8, 6)) and isinstance(cfg.inner.sizes[0], tuple)


def test_unknown_nested_key_error_names_the_file_and_key_path(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("inner:\n  ratoi: 1.0\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml: line 2: inner\.ratoi: unknown config key "
                                          r"\(did you mean 'inner\.ratio'\?\)"):
        config_io.load_yaml(Outer, path)


def test_section_key_is_unwrapped_and_appears_in_the_key_path(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("top:\n  name: b\n")
    assert config_io.load_yaml(Outer, path, section="top").name == "b"
    path.write_text("top:\n  nmae: b\n")
    with pytest.raises(ValueError, match=r"line 2: top\.nmae: unknown config key"):
        config_io.load_yaml(Outer, path, section="top")


def test_missing_file_and_non_mapping_file_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.yaml: config file not found"):
        config_io.load_yaml(Outer, tmp_path / "absent.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="list.yaml: top level of a config must be a mapping"):
        config_io.load_yaml(Outer, tmp_path / "list.yaml")
    (tmp_path / "empty.yaml").write_text("")
    assert config_io.load_yaml(Outer, tmp_path / "empty.yaml") == Outer()


# ------------------------------------------------------------------ typed values (files and --set)
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True)
class Train:
    lr: float = 0.1
    steps: int = 10
    amp: bool = True
    start: Literal["fork", "spawn"] = "fork"
    splits: tuple[str, ...] = ("train",)
    size: tuple[int, int] = (4, 3)
    note: Optional[str] = None
    colour: Colour = Colour.RED


@dataclass(frozen=True)
class Run:
    train: Train = field(default_factory=Train)
    name: str = "run"


def test_set_values_are_typed_for_their_fields():
    cfg = config_io.apply_overrides(Run(), [
        "train.lr=1e-3", "train.steps=1e3", "train.amp=false", "train.start=spawn",
        "train.splits=train2017,val2017", "train.size=[640, 480]", "train.note=hello",
        "train.colour=blue", "name=123"])
    t = cfg.train
    assert t.lr == 0.001 and type(t.lr) is float          # PyYAML alone leaves "1e-3" a string
    assert t.steps == 1000 and type(t.steps) is int
    assert t.amp is False and t.start == "spawn" and t.colour is Colour.BLUE
    assert t.splits == ("train2017", "val2017") and t.size == (640, 480)
    assert t.note == "hello" and cfg.name == "123"       # a str field takes the text as it is
    assert config_io.apply_overrides(cfg, ["train.note=none"]).train.note is None
    assert config_io.apply_overrides(cfg, ["train.steps=010"]).train.steps == 10  # not octal 8


@pytest.mark.parametrize("item, message", [
    ("train.lr=abc", "--set: train.lr: expected a finite number, got 'abc'"),
    ("train.lr=nan", "--set: train.lr: expected a finite number, got 'nan'"),
    ("train.steps=1.5", "--set: train.steps: expected an integer, got '1.5'"),
    ("train.steps=true", "--set: train.steps: expected an integer, got 'true'"),
    ("train.amp=maybe", "--set: train.amp: expected true or false, got 'maybe'"),
    ("train.start=thread", "--set: train.start: expected one of 'fork', 'spawn', got 'thread'"),
    ("train.size=[1, 2, 3]", "--set: train.size: expected a list of 2 values"),
    ("train.colour=green", "--set: train.colour: expected one of 'red', 'blue', got 'green'"),
    ("train.lrr=1", "--set: train.lrr: unknown config key; did you mean 'train.lr'?"),
    ("train=3", "--set: train: is a config section; set one of its keys: ['train.amp'"),
    ("train.lr", "--set: expected KEY=VALUE (e.g. train.lr=1e-3), got 'train.lr'"),
])
def test_bad_set_value_is_one_error_naming_the_key_and_the_expected_type(item, message):
    with pytest.raises(ConfigError) as info:
        config_io.apply_overrides(Run(), [item])
    assert str(info.value).startswith(message)


def test_yaml_values_are_type_checked_with_file_and_line(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("name: x\ntrain:\n  lr: 1e-3\n  steps: ten\n")
    with pytest.raises(ConfigError, match=r"run\.yaml: line 4: train\.steps: expected an integer, "
                                          r"got 'ten'"):
        config_io.load_yaml(Run, path)
    path.write_text("train:\n  lr: 1e-3\n  splits: [a, [b]]\n")
    with pytest.raises(ConfigError, match=r"line 3: train\.splits\[1\]: expected a string"):
        config_io.load_yaml(Run, path)
    path.write_text("train:\n  lr: .nan\n")
    with pytest.raises(ConfigError, match=r"line 2: train\.lr: expected a finite number"):
        config_io.load_yaml(Run, path)
    path.write_text("train:\n  lr: 1e-3\n  steps: 010\n")
    cfg = config_io.load_yaml(Run, path)
    assert cfg.train.lr == 0.001 and cfg.train.steps == 10   # YAML 1.2 numbers, not octal 8
    assert config_io.read_yaml_mapping(path)["train"] == {"lr": 0.001, "steps": 10}


def test_yaml_syntax_error_names_file_line_and_column(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("train:\n  lr: [0.1\n  steps: 3\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: line 3, column 8: invalid YAML"):
        config_io.load_yaml(Run, path)


def test_directory_or_binary_file_as_config_is_one_error(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        config_io.load_yaml(Run, tmp_path)
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match=r"bin\.yaml: not a UTF-8 text file"):
        config_io.load_yaml(Run, tmp_path / "bin.yaml")
    (tmp_path / "s.yaml").write_text("train: 3\n")
    with pytest.raises(ConfigError, match=r"s\.yaml: line 1: train: config section must be a mapping"):
        config_io.load_yaml(Run, tmp_path / "s.yaml")


@dataclass(frozen=True)
class Checked:
    steps: int = 1

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")


@dataclass(frozen=True)
class CheckedRun:
    train: Checked = field(default_factory=Checked)


def test_a_dataclass_range_check_becomes_an_error_naming_file_or_set_key(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("train:\n  steps: -2\n")
    with pytest.raises(ConfigError, match=r"r\.yaml: line 1: train: steps must be >= 1, got -2"):
        config_io.load_yaml(CheckedRun, path)
    with pytest.raises(ConfigError, match=r"--set: train\.steps: steps must be >= 1, got 0"):
        config_io.apply_overrides(CheckedRun(), ["train.steps=0"])
