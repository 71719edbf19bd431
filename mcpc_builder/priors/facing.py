"""P4 facing direction: face keypoints and their visibility say where the head points.

- Face towards the camera (nose, eyes and ears visible, nose about midway between the ears):
  the nose and eyes are closer than the ears (an adult nose is ~0.1 m in front of the ears; with
  the head turned by more than ~30 deg the near ear comes within 0.05 m, hence "midway").
- Back towards the camera (both ears visible, nose labelled but hidden, midway): the ears are
  closer than the nose. (A hidden ear alone is no cue: hands and other people hide ears too.)
- Torso side: when the torso is turned (shoulder / hip line clearly foreshortened), the side the
  head shows is the nearer one: a visible left ear with a hidden right ear, or a frontal face
  whose nose points to the image left (the person turned to their right), means the left
  shoulder and hip are closer than the right ones. Derivation: a person facing direction d has
  its left at up x d; for d turned by phi from the camera axis the left side's depth changes by
  -sin(phi) times half the body width, whatever the front/back view.
"""

from __future__ import annotations

import numpy as np

from ..joints import LIMBS as BODY_LIMBS
from ..joints import MCPC21, TORSO_LINES
from .config import PriorConfig
from .foreshortening import length_ratio
from .pairs import Pairs, euclidean

J = MCPC21.index
NOSE, L_EYE, R_EYE, L_EAR, R_EAR = (J[p] for p in ("nose", "left_eye", "right_eye", "left_ear",
                                                  "right_ear"))
L_SHO, R_SHO, L_HIP, R_HIP = J["left_shoulder"], J["right_shoulder"], J["left_hip"], J["right_hip"]
# Rows of foreshortening.LIMBS: the limbs, then the torso lines in ``joints.TORSO_LINES`` order.
SHOULDER_LINE, HIP_LINE = (len(BODY_LIMBS) + [n for n, _, _ in TORSO_LINES].index(line)
                           for line in ("shoulder_line", "hip_line"))


def _emit(mask: np.ndarray, a, b, label, confidence: float, out: list) -> None:
    """Append pairs (row, a) vs (row, b) for rows where mask holds; a, b, label scalars or (N,)."""
    rows = np.flatnonzero(mask)
    pick = lambda v: np.asarray(v)[rows] if np.ndim(v) else v  # noqa: E731
    out.append(Pairs.make("facing", rows, pick(a), rows, pick(b), pick(label), confidence))


def facing(keypoints: np.ndarray, visibility: np.ndarray, scale: np.ndarray,
           config: PriorConfig) -> Pairs:
    """Facing-direction labels.

    Arguments:
        keypoints: (N, 21, 2) float pixels; visibility: (N, 21) uint8 0/1/2;
        scale: (N,) float pixels (standing height).
    """
    cfg = config.facing
    vis = visibility == 2
    hid = visibility == 1
    lab = visibility > 0
    x = keypoints[..., 0]
    with np.errstate(invalid="ignore"):
        ear_span = euclidean(keypoints[:, L_EAR] - keypoints[:, R_EAR])
        big_face = ear_span >= cfg.min_face_px
    out: list[Pairs] = []
    c = cfg.face_confidence
    with np.errstate(invalid="ignore", divide="ignore"):
        # Head yaw proxy: the nose's horizontal offset from the ears' midpoint over the ear span
        # (0 facing straight at or away from the camera; ~0.7 tan(yaw) for an adult head).
        asym = np.abs(x[:, NOSE] - 0.5 * (x[:, L_EAR] + x[:, R_EAR])) / ear_span
        square = asym <= cfg.max_yaw_offset
    # Frontal face: nose and eyes in front of the ears.
    frontal = vis[:, NOSE] & vis[:, L_EYE] & vis[:, R_EYE] & vis[:, L_EAR] & vis[:, R_EAR] \
        & big_face
    if cfg.face_order:
        for front in (NOSE, L_EYE, R_EYE):
            for ear in (L_EAR, R_EAR):
                _emit(frontal & square, front, ear, 1, c, out)
        # Back view: ears in front of the hidden nose.
        back = vis[:, L_EAR] & vis[:, R_EAR] & hid[:, NOSE] & big_face & square
        for ear in (L_EAR, R_EAR):
            _emit(back, ear, NOSE, 1, c, out)
    # Face points hidden by the person's own head (turned away): order them against the other
    # face points, never against a body part that merely overlaps them in the image.
    if cfg.self_occluded_face:
        # (Eyes are left out: a hidden eye behind the nose bridge is within ~5 cm of the other
        # eye's depth; 62-76% on the mocap dev set.)
        for near, far in ((L_EAR, R_EAR), (R_EAR, L_EAR)):
            # A head turned far enough to hide an ear has its nose on that ear's side: in the
            # image the nose is nearer the hidden ear than the visible one. (A frontal face with
            # a mistaken flag has its nose midway and is left out.)
            with np.errstate(invalid="ignore"):
                to_near = euclidean(keypoints[:, NOSE] - keypoints[:, near])
                to_far = euclidean(keypoints[:, NOSE] - keypoints[:, far])
                nose_side = to_far * cfg.self_occlusion_nose_ratio < to_near
            turned = vis[:, near] & hid[:, far] & vis[:, NOSE] & nose_side
            _emit(turned, near, far, 1, cfg.self_occlusion_confidence, out)
            _emit(turned, NOSE, far, 1, cfg.self_occlusion_confidence, out)
    # Torso side: +1 when the left side is nearer, -1 when the right side is, 0 unknown.
    with np.errstate(invalid="ignore"):
        offset = (x[:, NOSE] - 0.5 * (x[:, L_EAR] + x[:, R_EAR])) / scale
        frontal_turn = frontal & (np.abs(offset) >= cfg.turn_min_offset)
    side = np.zeros(len(keypoints), np.int8)
    side[frontal_turn & (offset < 0)] = 1  # nose to the image left: turned to their right
    side[frontal_turn & (offset > 0)] = -1
    side[vis[:, L_EAR] & hid[:, R_EAR]] = 1
    side[vis[:, R_EAR] & hid[:, L_EAR]] = -1
    ratio, _ = length_ratio(keypoints, lab, scale)
    with np.errstate(invalid="ignore"):
        lines = ((SHOULDER_LINE, L_SHO, R_SHO),) + (((HIP_LINE, L_HIP, R_HIP),)
                                                     if cfg.torso_side_hips else ())
        for line, a, b in lines:
            turned = (side != 0) & (ratio[:, line] <= cfg.torso_max_ratio)
            _emit(turned, a, b, side, cfg.torso_confidence, out)
    return Pairs.concat(out)
