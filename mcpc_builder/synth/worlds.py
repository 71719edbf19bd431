"""World configurations: ``WorldConfig`` (how scenes are drawn) and the named worlds shipped with
the package (``dev``, ``held_out``), loaded by ``load_world``.

``WorldConfig()`` is the default world: the embedded default data and the pre-training ablation
are drawn from it, and the same seed gives byte-identical datasets. Every realism feature is a field
whose default keeps that world unchanged; the named YAML configs in ``worlds/`` switch them on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import config_io
from .annotator import AnnotatorConfig
from .ground import GroundConfig
from .pose_families import POSES

WORLDS_DIR = Path(__file__).with_name("worlds")
NAMED_WORLDS = ("dev", "held_out")


@dataclass(frozen=True)
class WorldConfig:
    """How scenes are drawn. All ranges are (low, high); lengths in metres, angles in degrees.

    Arguments:
        people_count_weights: relative frequency of 1, 2, ... people per scene.
        child_fraction: probability that a person is a child.
        adult_height, child_height: stature ranges.
        pose_weights: (pose, weight) pairs over ``POSES``.
        camera_height: camera centre height above the ground.
        camera_roll: max |roll|.
        pitch_jitter, yaw_jitter: max deviation from looking straight at the group.
        focal_factor: focal length as a multiple of the image width.
        image_sizes: (width, height) choices.
        distance: range of the person's distance from the camera (ground-plane distance).
        group_spread: standard deviation of people around the group centre.
        poses: path of a pose library (``.npz``, see ``pose_library``) or None (pose families
            only). A relative path in a YAML world is relative to that YAML file.
        pose_library_fraction: with ``poses``, the probability that a person takes a library pose
            (scaled to their stature, turned to a random heading) instead of a pose family.
        annotator: how the 2D keypoints and flags written to COCO / MPII files err (click noise
            from COCO's OKS sigmas, visibility-flag mistakes); the default is exact.
        body_proportions: ``fixed`` (one set of fractions of stature, a few % jitter) or
            ``anthropometric`` (each segment drawn from published means and spreads,
            ``anthropometry``).
        length_spread, breadth_spread: multipliers of the anthropometric length and
            breadth/girth spreads.
        gait: ``synthetic`` (sinusoidal legs) or ``cycle`` (walking and running through a real
            gait cycle with heel strike, toe-off, swing-foot lift and running flight; ``gait``).
        seating: ``stool`` (a stool under the pelvis, feet on the floor) or ``chair`` (a chair of
            ordinary height with backrest and legs; feet may dangle or stretch; ``chair``).
        ground: steps and slopes under the people (``ground.GroundConfig``; default flat).
    """

    people_count_weights: tuple[float, ...] = (0.42, 0.26, 0.16, 0.1, 0.06)
    child_fraction: float = 0.15
    adult_height: tuple[float, float] = (1.50, 1.95)
    child_height: tuple[float, float] = (1.00, 1.45)
    pose_weights: tuple[tuple[str, float], ...] = (
        ("standing", 0.34), ("walking", 0.24), ("running", 0.07), ("reaching", 0.1),
        ("sitting", 0.13), ("lying", 0.05), ("jumping", 0.07),
    )
    camera_height: tuple[float, float] = (0.5, 3.0)
    camera_roll: float = 4.0
    pitch_jitter: float = 6.0
    yaw_jitter: float = 10.0
    focal_factor: tuple[float, float] = (0.6, 1.6)
    image_sizes: tuple[tuple[int, int], ...] = ((640, 480), (480, 640), (512, 384), (640, 427),
                                                (427, 640))
    distance: tuple[float, float] = (2.0, 15.0)
    group_spread: float = 1.2
    poses: str | None = None
    pose_library_fraction: float = 1.0
    annotator: AnnotatorConfig = field(default_factory=AnnotatorConfig)
    body_proportions: str = "fixed"
    length_spread: float = 1.0
    breadth_spread: float = 1.0
    gait: str = "synthetic"
    seating: str = "stool"
    ground: GroundConfig = field(default_factory=GroundConfig)

    def __post_init__(self) -> None:
        names = {p for p, _ in self.pose_weights}
        unknown = names - set(POSES)
        if unknown:
            raise ValueError(f"WorldConfig: unknown poses {sorted(unknown)}; known: {POSES}")
        if not self.people_count_weights or min(self.people_count_weights) < 0:
            raise ValueError("WorldConfig: people_count_weights must be non-negative")
        if not 0.0 <= self.pose_library_fraction <= 1.0:
            raise ValueError("WorldConfig: pose_library_fraction must be in [0, 1]")
        for name, allowed in (("body_proportions", ("fixed", "anthropometric")),
                              ("gait", ("synthetic", "cycle")), ("seating", ("stool", "chair"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"WorldConfig: {name} must be one of {allowed}, "
                                 f"got {getattr(self, name)!r}")
        if self.poses is not None and not isinstance(self.poses, str):
            object.__setattr__(self, "poses", str(self.poses))

    @property
    def realism(self):
        """The per-person options (``person.Realism``) of this world."""
        from .person import Realism

        return Realism(self.body_proportions, self.length_spread, self.breadth_spread, self.gait,
                       self.seating)

    @classmethod
    def from_dict(cls, data: dict) -> "WorldConfig":
        """Build from plain values (e.g. a YAML mapping); lists become tuples."""
        return config_io.from_dict(cls, data)

    @classmethod
    def from_yaml(cls, path) -> "WorldConfig":
        """Load from a YAML mapping of field names to values."""
        return load_world(path)


def load_world(name_or_path: str | Path | None) -> WorldConfig:
    """A world by name (``default``, ``dev``, ``held_out``) or from a YAML file of ``WorldConfig``
    fields. ``None`` or ``default`` gives ``WorldConfig()``.

    A relative ``poses`` path in a YAML file is taken relative to that file.
    """
    if name_or_path is None or str(name_or_path) == "default":
        return WorldConfig()
    name = str(name_or_path)
    if name in NAMED_WORLDS:
        path = WORLDS_DIR / f"{name}.yaml"
    else:
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(f"{name}: no such world config file; named worlds: "
                                    f"default, {', '.join(NAMED_WORLDS)}")
    values = config_io.read_yaml_mapping(path)
    poses = values.get("poses")
    if isinstance(poses, str) and not Path(poses).is_absolute():
        values["poses"] = str((path.parent / poses).resolve())
    return config_io.from_dict(WorldConfig, values, str(path))
