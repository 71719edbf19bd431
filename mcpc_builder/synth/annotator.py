"""A human annotator: 2D keypoint clicks with the spread of real annotators, and visibility flags
with real annotators' mistakes.

**Click noise.** COCO's keypoint evaluation (cocodataset.org/#keypoints-eval; ``pycocotools``
``computeOks``) defines a per-keypoint constant from redundantly annotated images: sigma_i^2 =
E[d_i^2 / s^2], d_i the distance between two annotators' clicks of keypoint i and s^2 the
person's segment area in pixels. The published sigmas are below (``COCO_OKS_SIGMAS``). An
isotropic 2D Gaussian click with per-axis standard deviation tau has E[d^2] = 2 tau^2, so a
click spread of sigma_i * s in distance is tau_i = sigma_i * sqrt(area) / sqrt(2) per axis;
``noise_scale`` multiplies it (1 = COCO's annotators).

**Visibility flags.** COCO's guideline leaves self-occlusion to the annotator (a limb behind the
person's own body is "sometimes visible, sometimes not" in COCO and CrowdPose), and a hidden face
point (the far ear of a turned head) is mostly left unclicked because its place cannot be
guessed. The flags are therefore corrupted per joint, with rates set by the world config:

* hidden only by the person's own body -> marked visible with ``self_hidden_marked_visible``;
* hidden by another person or furniture -> marked visible with ``other_hidden_marked_visible``;
* visible -> marked hidden with ``visible_marked_hidden`` (joints at an occluder's edge);
* a hidden face point (eyes, ears, nose) -> left unlabelled (v=0) with ``hidden_face_unlabelled``.

The ground-truth sidecars keep the world's exact flags (``visibility_true``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..joints import BODY_POINTS

# COCO-17 OKS sigmas in COCO order (pycocotools: [.26, .25, .25, .35, .35, .79, .79, .72, .72,
# .62, .62, 1.07, 1.07, .87, .87, .89, .89] / 10).
COCO_OKS_SIGMAS = {
    "nose": 0.026, "left_eye": 0.025, "right_eye": 0.025, "left_ear": 0.035, "right_ear": 0.035,
    "left_shoulder": 0.079, "right_shoulder": 0.079, "left_elbow": 0.072, "right_elbow": 0.072,
    "left_wrist": 0.062, "right_wrist": 0.062, "left_hip": 0.107, "right_hip": 0.107,
    "left_knee": 0.087, "right_knee": 0.087, "left_ankle": 0.089, "right_ankle": 0.089,
}
# Points COCO does not annotate (MPII's and the midpoints): no published sigma; taken from the
# nearest COCO landmark of like definiteness (pelvis and spine like the hips, the others like the
# shoulders).
EXTRA_SIGMAS = {"pelvis": 0.107, "spine": 0.107, "thorax": 0.079, "upper_neck": 0.079,
                "head_top": 0.079}
SIGMAS = np.array([COCO_OKS_SIGMAS.get(p, EXTRA_SIGMAS.get(p)) for p in BODY_POINTS])
FACE = np.array([p in ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
                 for p in BODY_POINTS])


@dataclass(frozen=True)
class AnnotatorConfig:
    """How a synthetic annotator errs (all zero: exact projections and exact flags).

    Arguments:
        noise_scale: click noise as a multiple of COCO's annotator spread (1.0 = COCO).
        self_hidden_marked_visible: P(v=2 | joint hidden by its own body only).
        other_hidden_marked_visible: P(v=2 | joint hidden by another person or furniture).
        visible_marked_hidden: P(v=1 | joint visible).
        hidden_face_unlabelled: P(v=0 | face point hidden).
    """

    noise_scale: float = 0.0
    self_hidden_marked_visible: float = 0.0
    other_hidden_marked_visible: float = 0.0
    visible_marked_hidden: float = 0.0
    hidden_face_unlabelled: float = 0.0

    def __post_init__(self) -> None:
        for name in ("self_hidden_marked_visible", "other_hidden_marked_visible",
                     "visible_marked_hidden", "hidden_face_unlabelled"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"AnnotatorConfig: {name} must be in [0, 1]")
        if self.noise_scale < 0:
            raise ValueError("AnnotatorConfig: noise_scale must be >= 0")

    @property
    def exact(self) -> bool:
        """True when the annotator makes no error (nothing is drawn from the generator)."""
        return (self.noise_scale == 0 and self.self_hidden_marked_visible == 0
                and self.other_hidden_marked_visible == 0 and self.visible_marked_hidden == 0
                and self.hidden_face_unlabelled == 0)


def click_std(area: float, noise_scale: float = 1.0) -> np.ndarray:
    """(22,) per-axis click standard deviation in pixels for a person of segment ``area`` px^2."""
    return noise_scale * SIGMAS * math.sqrt(max(area, 0.0)) / math.sqrt(2.0)


def annotate(rng: np.random.Generator, uv: np.ndarray, vis: np.ndarray, self_only: np.ndarray,
             area: float, config: AnnotatorConfig) -> tuple[np.ndarray, np.ndarray]:
    """One person's keypoints as an annotator would click and flag them.

    Arguments:
        uv: (22, 2) float pixels, exact projections.
        vis: (22,) uint8 exact flags (0 outside the image, 1 hidden, 2 visible).
        self_only: (22,) bool, hidden by the person's own body and nothing else.
        area: the person's segment area, pixels^2 (COCO's ``area``).
        config: the error rates.

    Returns:
        uv (22, 2) float64 clicked pixels; flags (22,) uint8. Joints outside the image stay 0.
    """
    uv = np.asarray(uv, dtype=np.float64)
    vis = np.asarray(vis, dtype=np.uint8)
    if config.exact:
        return uv.copy(), vis.copy()
    n = len(vis)
    noise = rng.normal(0.0, 1.0, (n, 2)) * click_std(area, config.noise_scale)[:, None]
    draw = rng.random((4, n))
    hidden = vis == 1
    out = vis.copy()
    flip_self = hidden & self_only & (draw[0] < config.self_hidden_marked_visible)
    flip_other = hidden & ~self_only & (draw[1] < config.other_hidden_marked_visible)
    out[flip_self | flip_other] = 2
    out[(vis == 2) & (draw[2] < config.visible_marked_hidden)] = 1
    out[hidden & FACE & ~(flip_self | flip_other) & (draw[3] < config.hidden_face_unlabelled)] = 0
    return uv + noise, out
