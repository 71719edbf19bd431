"""The shared YAML / dict -> frozen dataclass loader (mcpc_builder.config_io)."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass, field

import pytest

from mcpc_builder import config_io


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
    with pytest.raises(ValueError, match=r"typo\.yaml: unknown config key\(s\) \['inner\.ratoi'\]"):
        config_io.load_yaml(Outer, path)


def test_section_key_is_unwrapped_and_appears_in_the_key_path(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("top:\n  name: b\n")
    assert config_io.load_yaml(Outer, path, section="top").name == "b"
    path.write_text("top:\n  nmae: b\n")
    with pytest.raises(ValueError, match=r"\['top\.nmae'\]"):
        config_io.load_yaml(Outer, path, section="top")


def test_missing_file_and_non_mapping_file_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.yaml: config file not found"):
        config_io.load_yaml(Outer, tmp_path / "absent.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="list.yaml: top level of a config must be a mapping"):
        config_io.load_yaml(Outer, tmp_path / "list.yaml")
    (tmp_path / "empty.yaml").write_text("")
    assert config_io.load_yaml(Outer, tmp_path / "empty.yaml") == Outer()
