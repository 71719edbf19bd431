"""Every threshold of the perspective priors, in one frozen dataclass loadable from YAML.

Lengths are in units of the person *scale* s (the person's standing height in pixels, see
``person_scale``) unless the name says otherwise; angles in degrees. The whole config is written
into the build manifest, so a build records exactly which thresholds made its labels.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .. import config_io


@dataclass(frozen=True)
class PersonScaleConfig:
    """P2 (and the scale every rule uses).

    min_segments: fewest labelled body segments (torso, thighs, shins, upper arms, forearms)
        a scale estimate needs; fewer -> scale NaN and every rule abstains for that person.
    min_ratio: a person is closer than another when its scale is larger by at least this ratio.
        2.0, not 1.5: a child can be half an adult's height (1.0 m vs 1.95 m), and on the
        synthetic audit 1.5 gave 94% precision, nearly all errors an adult "in front of" a
        nearer child; 2.0 gives >99%.
    require_legs: both persons need a labelled thigh or shin (a cut-off upper body makes the
        scale estimate depend on arms alone, which is less reliable).
    confidence_at_min / confidence_max: confidence at ``min_ratio`` and the ceiling it grows to
        (0.9-0.99: 98.1% right on the dev world, so a 0.6 start said less than it knew).
    """

    min_segments: int = 3
    min_ratio: float = 2.0
    require_legs: bool = True
    confidence_at_min: float = 0.9
    confidence_max: float = 0.99


@dataclass(frozen=True)
class CrossPersonConfig:
    """How a person-level depth order (P1, P2) becomes keypoint pairs.

    all_joints_min_gap: the depth gap (metres-free: in units of body height) above which every
        labelled joint of the nearer person is closer than every joint of the farther one;
        below it only the root (pelvis) pair is emitted. A body's depth extent is about a
        shoulder width (0.26 H) plus an arm reaching forward (0.4 H), hence ~0.7.
    focal_min_factor: lower bound on the focal length as a fraction of max(image width,
        height) (0.5 = field of view at most 90 deg). The gap is estimated with this bound, so
        it is never over-estimated for wider lenses.
    """

    all_joints_min_gap: float = 0.7
    focal_min_factor: float = 0.5


@dataclass(frozen=True)
class FootContactConfig:
    """P1: ground contact.

    max_torso_tilt_deg: the pelvis->thorax direction in the image must be within this angle of
        vertical (upright).
    min_hip_height: the lower ankle must be at least this far (x s) below the hips in the image
        (standing legs are ~0.47 H long; sitting or kneeling people fail).
    min_knee_below_hip: each labelled knee at least this far (x s) below the hips.
    border_margin: ankles closer than this (x s) to the image bottom or side count as cut off.
    within_min_drop: within a person, the lower ankle must be lower by more than this (x s); a
        foot lifted while walking raises the ankle by up to ~0.05 H, so smaller drops abstain.
    within_person: emit the within-person ankle labels. Off: under real gait a lifted foot is
        higher in the image and may be closer or farther (0.79 precision on real bodies, 0.84 on
        the mocap dev set); ``lifting`` orders the legs from their 3D lifts instead.
    within_confidence: confidence of within-person ankle labels at the threshold (grows to
        ``within_confidence_max`` at twice the threshold).
    cross_min_drop: across people, the contact row of one must be lower by more than this
        (x the larger scale).
    fit_max_residual: with 3+ grounded people in an image, a person whose contact row is
        off the horizon fit (row = horizon + c * s) by more than this (x s) is not used.
    cross_confidence / cross_confidence_max: confidence at the threshold and its ceiling (0.9-0.99:
        99.9% right on the dev world).
    """

    max_torso_tilt_deg: float = 20.0
    min_hip_height: float = 0.38
    min_knee_below_hip: float = 0.12
    border_margin: float = 0.02
    within_min_drop: float = 0.05
    within_person: bool = False
    within_confidence: float = 0.55
    within_confidence_max: float = 0.8
    cross_min_drop: float = 0.05
    fit_max_residual: float = 0.15
    cross_confidence: float = 0.9
    cross_confidence_max: float = 0.99


@dataclass(frozen=True)
class ForeshorteningConfig:
    """P3: limb foreshortening (Taylor 2000).

    emit_equal: emit the "equal" labels. Off by default: on the synthetic audit they reach only
        ~60% precision with a 0.05 m tolerance (a 5% error in the scale estimate already hides a
        15 deg tilt), far below the 90% a default-on label needs.
    equal_min_ratio: l / L at or above this -> the limb lies in the image plane, label 0.
    equal_max_ratio: l / L above this abstains: the limb that set the scale has l / L = 1 by
        construction, and longer is an annotation or proportion outlier.
    min_length_px: limbs shorter than this in the image abstain (keypoint noise dominates).
    ordered_max_ratio: l / L at or below this -> the limb is clearly tilted; its ordered label is
        emitted only where another rule fixed the sign (then with this rule's margin).
    equal_confidence / ordered_confidence: confidence of the labels.
    """

    emit_equal: bool = False
    equal_min_ratio: float = 0.985
    equal_max_ratio: float = 0.999
    min_length_px: float = 6.0
    ordered_max_ratio: float = 0.8
    equal_confidence: float = 0.6
    ordered_confidence: float = 0.7


@dataclass(frozen=True)
class FacingConfig:
    """P4: facing direction from face keypoints and the left-right order of the torso.

    min_face_px: the ear-to-ear image distance must exceed this, in pixels.
    max_yaw_offset: face labels need the nose's horizontal offset from the ears' midpoint to be
        at most this fraction of the ear span (head within ~15 deg of facing / backing the camera).
    turn_min_offset: the nose's horizontal offset from the ears' midpoint (x s) that counts as a
        head turned to one side (for the torso-side cue).
    torso_max_ratio: the shoulder / hip line is used for the torso-side cue only when its l/L is
        at or below this (the torso is turned enough for one side to be clearly nearer).
    face_confidence / torso_confidence: confidence of the labels (0.9: the frontal-face and
        torso-side labels measured 92-93% on the mocap dev set with COCO-sized noise).
    face_order: emit the frontal-face (nose and eyes before the ears) and back-view (ears before
        the hidden nose) labels. Off: a pitched head or a small one brings the nose within the
        5 cm tie tolerance of the ears (83-94% across the dev world with and without mocap
        poses); ``lifting`` orders the face points with margins from their 2D offsets instead.
    torso_side_hips: also order the hips by the torso-side cue (the shoulders always). Off: the
        hip joints are only ~0.1 H apart, so a turn that makes them differ by more than the
        audit's 5 cm tolerance is rare (87% on the mocap dev set vs 93% for the shoulders).
    self_occluded_face: an ear (eye) marked hidden while the other one and the nose are visible
        is turned away behind the head: the visible ear (eye) and the nose are closer than it.
    self_occlusion_nose_ratio: those labels need the nose nearer the hidden ear than the visible
        one in the image by this factor (the head really turned away from the hidden ear's side).
    self_occlusion_confidence: confidence of those labels (95-97% on the mocap dev set, 87-97%
        on the dev world with and without mocap poses).
    """

    min_face_px: float = 4.0
    max_yaw_offset: float = 0.2
    turn_min_offset: float = 0.02
    torso_max_ratio: float = 0.75
    face_confidence: float = 0.9
    torso_confidence: float = 0.9
    face_order: bool = False
    torso_side_hips: bool = False
    self_occluded_face: bool = True
    self_occlusion_confidence: float = 0.9
    self_occlusion_nose_ratio: float = 1.2


@dataclass(frozen=True)
class OcclusionConfig:
    """P5: occlusion.

    limb_radius: half-thickness of a limb region (x s of the covering person).
    torso_radius: half-thickness of the torso region relative to half its image width.
    same_person: also use self-occlusion (a hidden joint behind the person's own limb / torso).
        Off: with realistic flag errors (annotators mark a joint hidden only by the person's own
        body visible about a third of the time, and some visible joints hidden) these labels
        reach 88.7% on the dev world (cross-person occlusion: 99.1%), below the ~90% a
        default-on rule needs; ``lifting`` orders the person's own joints instead.
    face_behind_own_body: with ``same_person``, also order a hidden face point (nose, eyes,
        ears) behind the person's own limbs / torso. Off: a face point marked hidden is nearly
        always hidden by the person's own head turning away, and ordering it against the
        shoulder or elbow that overlaps it in 2D was wrong about a third of the time on real
        bodies (``facing.self_occluded_face`` orders it against the other face points instead).
    confidence: confidence of the labels (0.9: 96% on the mocap dev set, 98.5% on the
        synthetic audit).
    """

    limb_radius: float = 0.025
    torso_radius: float = 0.8
    same_person: bool = False
    face_behind_own_body: bool = False
    confidence: float = 0.9


@dataclass(frozen=True)
class LiftingConfig:
    """Within-person depth from the enumerated 3D lifts of the 2D skeleton (``lifting``).

    height_over / height_under: the true standing height lies in
        [scale / height_over, scale / height_under] (the scale estimate can overshoot when a
        person's proportions exceed the standard ones, and undershoot when every segment is
        foreshortened).
    noise: annotation noise allowed on every bone's image length (x scale).
    oks_noise: share that allowance between bones by their ends' COCO OKS sigmas
        (``lifting.BONE_NOISE_WEIGHT``: same mean, thighs and the hip line ~1.5x, face bones
        ~0.4-0.6x) instead of the same allowance for every bone.
    spread: the bones' depth intervals combine as centre +- spread x (quadrature sum of their
        half-widths): length errors of different bones are independent, so the worst case of a
        plain interval sum (spread -> every bone at its extreme at once) is far too loose.
    use_visibility: an ear pair with one ear marked hidden and the other visible keeps only the
        lifts where the hidden ear is the farther one (``lifting.VISIBILITY_LINES``).
    min_margin: a pair is labelled when z_a - z_b stays this far (x height) from 0 in every
        surviving lift (0.03 H ~ 5 cm, the audit's tie tolerance).
    max_twist_cos: hip line and shoulder line directions must have at least this cosine.
    max_torso_skew_cos: |cos| between the left-right axis and the spine at most this.
    min_thigh_forward_cos: thigh direction . body forward at least this (hip extension limit:
        -0.35 is ~20 deg behind the frontal plane, the passive range; -0.25 cost the dev world
        3 points of precision).
    knee_hyperextension_sin: (thigh x shin) . left at least minus this (knees bend backwards).
    knee_min_bend_sin: the knee limit is applied only where the knee is bent in the image by at
        least this sine (~37 deg): noise bends a straight leg a few degrees either way (without
        it: 87% on the dev world; with it the knee limit raises coverage at 96%).
    min_upper_arm_forward_cos: upper-arm direction . body forward at least this.
    max_face_skew_cos: |cos| between the ear line and the ears->nose direction at most this.
    min_nose_forward_cos: ears->nose . (ear line x neck) at least this (the face is in front).
    min_eye_forward_cos: ears->eye . ears->nose at least this.
    min_head_torso_cos: ears->nose . body forward at least this (the neck turns the face at most
        ~80 deg from the chest; -0.3 leaves room for the axes' errors). It ties the torso's
        turn to the face's.
    confidence_min / confidence_max / confidence_span: confidence grows linearly from min at
        ``min_margin`` to max at ``min_margin + confidence_span`` (x height).
    batch: persons per vectorised batch (bounds memory).
    """

    height_over: float = 1.25
    height_under: float = 1.0
    noise: float = 0.02
    oks_noise: bool = True
    min_margin: float = 0.03
    spread: float = 0.5
    use_visibility: bool = True
    max_twist_cos: float = 0.4
    max_torso_skew_cos: float = 0.8
    min_thigh_forward_cos: float = -0.35
    knee_hyperextension_sin: float = 0.1
    knee_min_bend_sin: float = 0.6
    min_upper_arm_forward_cos: float = -0.9
    max_face_skew_cos: float = 0.6
    min_nose_forward_cos: float = -0.3
    min_eye_forward_cos: float = 0.3
    min_head_torso_cos: float = -0.3
    confidence_min: float = 0.94
    confidence_max: float = 0.99
    confidence_span: float = 0.15
    batch: int = 4096


@dataclass(frozen=True)
class PoseLibraryConfig:
    """P6 (opt-in): within-person order voted by the nearest views of a 3D pose library
    (``pose_library``). Runs only when ``path`` names a library (``mcpc-build --pose-library``).

    path: the pose library (``.npz`` as ``../shared/fixtures/mocap-dev/poses.npz``, or ``.bvh``).
    views: sampled cameras per library pose; seed: their seed.
    mirror: add every pose mirrored left-right (doubles the library; a left-right swapped body is
        as plausible as the original).
    noise: COCO-sized annotator click noise on the library's 2D features.
    min_gap_m: a view orders a pair when the true depth gap is at least this (library metres).
    k: neighbours that vote; agreement: the fraction of them that must order the pair the same
        way (1.0: every one).
    candidates: with ``torso_filter``, the nearest views searched for ``k`` whose torso
        orientation ``lifting`` keeps for the person (fewer than ``k``: the filter is dropped).
    min_joints: fewest of the 12 feature joints (both hips always among them) a person needs;
        one with fewer than 12 is compared with the library on the joints it has.
    max_distance: a person whose k-th voting view is farther than this in the normalised 2D
        features (the library does not cover the pose) gets no label (None: no limit).
    near_distance / confidence_near / confidence_far: the confidence of a label, by that same
        distance: within ``near_distance`` the library covers the pose (97.5% right on the dev
        world, 98.9% on the mocap dev set with the activity held out), beyond it less (88.6%
        and ~94%).

    Defaults were chosen on the mocap dev set with each test activity held out of the library
    and on the dev world; the held-out world was not used (README, "The pose-library prior").
    """

    path: str = ""
    views: int = 200
    seed: int = 1
    mirror: bool = True
    noise: bool = True
    min_gap_m: float = 0.05
    k: int = 50
    agreement: float = 1.0
    candidates: int = 400
    torso_filter: bool = True
    min_joints: int = 8
    max_distance: float | None = None
    near_distance: float = 1.1
    confidence_near: float = 0.97
    confidence_far: float = 0.9


# Append new rules at the end, never reorder: the writer stores a rule as its int8 index here.
RULE_NAMES: tuple[str, ...] = ("foot_contact", "person_scale", "foreshortening", "facing",
                               "occlusion", "lifting", "pose_library")


@dataclass(frozen=True)
class PriorConfig:
    """All prior thresholds. ``enabled`` lists the rules that emit labels (order irrelevant)."""

    # foreshortening is off: ``lifting`` does its job with every sign cue at once; on its own
    # it reached 87% on the mocap dev set (knee / elbow signs borrowed from occlusion ~50%).
    # facing is off: what it adds beyond lifting (torso side from the face, hidden ears) was
    # 81.5-90% right on the dev world with and without mocap poses; lifting uses the same cues
    # (hidden ear farther, face within ~80 deg of the chest) inside its lifts.
    enabled: tuple[str, ...] = ("foot_contact", "person_scale", "occlusion", "lifting")
    person_scale: PersonScaleConfig = field(default_factory=PersonScaleConfig)
    cross_person: CrossPersonConfig = field(default_factory=CrossPersonConfig)
    foot_contact: FootContactConfig = field(default_factory=FootContactConfig)
    foreshortening: ForeshorteningConfig = field(default_factory=ForeshorteningConfig)
    facing: FacingConfig = field(default_factory=FacingConfig)
    occlusion: OcclusionConfig = field(default_factory=OcclusionConfig)
    lifting: LiftingConfig = field(default_factory=LiftingConfig)
    pose_library: PoseLibraryConfig = field(default_factory=PoseLibraryConfig)

    def __post_init__(self) -> None:
        unknown = set(self.enabled) - set(RULE_NAMES)
        if unknown:
            raise ValueError(f"unknown prior(s) {sorted(unknown)}; known: {list(RULE_NAMES)}")
        object.__setattr__(self, "enabled", tuple(r for r in RULE_NAMES if r in self.enabled))
        if "pose_library" in self.enabled and not self.pose_library.path:
            raise ValueError("prior 'pose_library' is enabled but pose_library.path names no "
                             "library (--pose-library FILE)")
        lib = self.pose_library
        if lib.k < 1 or lib.views < 1 or lib.candidates < 1 or not 0.5 <= lib.agreement <= 1.0 \
                or (lib.max_distance is not None and not lib.max_distance > 0) \
                or not 3 <= lib.min_joints <= 12:
            raise ValueError("pose_library: k, views and candidates must be >= 1, agreement "
                             "in [0.5, 1], min_joints in [3, 12] and max_distance > 0, got "
                             f"k={lib.k} views={lib.views} candidates={lib.candidates} "
                             f"agreement={lib.agreement} min_joints={lib.min_joints} "
                             f"max_distance={lib.max_distance}")

    def with_pose_library(self, path: str | Path) -> "PriorConfig":
        """This config with the pose-library prior on, reading ``path``."""
        lib = dataclasses.replace(self.pose_library, path=str(path))
        enabled = tuple(self.enabled) + ("pose_library",)
        return dataclasses.replace(self, pose_library=lib, enabled=enabled)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["enabled"] = list(self.enabled)
        return d

    @classmethod
    def from_dict(cls, d: dict | None) -> "PriorConfig":
        """From a plain mapping (YAML); unknown sections / options raise ``ValueError``."""
        return config_io.from_dict(cls, d, "prior config")

    @classmethod
    def from_yaml(cls, path: str | Path) -> "PriorConfig":
        """From a YAML file, under a top-level ``priors:`` key or at the top level."""
        return config_io.load_yaml(cls, path, section="priors")

    def to_yaml(self) -> str:
        return yaml.safe_dump({"priors": self.to_dict()}, sort_keys=False)
