"""Within-person relative depth by enumerating the 3D lifts of the 2D skeleton (intervals).

Each bone of true length L seen at image length l has a depth offset |dz| = sqrt(L^2 - l^2)
(Taylor 2000). L is not known exactly: it lies in an anthropometric RANGE relative to the person's
height (``BONE_RANGES``), and the height itself only within a band around the foreshortening-robust
``person_scale`` estimate; l carries annotation noise. So every bone's |dz| is an interval
[d_lo, d_hi], with an unknown sign.

The body is a torso (hip line, shoulder line, spine) carrying independent chains (each arm, each
leg, the head with its face points). A torso hypothesis fixes the three torso signs (8); a chain
combo fixes the signs of a chain's bones (4 per limb, 8 for the head: neck, ear line, nose; the
eyes share the nose's sign). The facing direction
follows from the 2D skeleton (forward = left x up: the left-right order of shoulders and hips
against the spine fixes whether the chest faces the camera). Combos that break joint limits are
pruned: hip and shoulder lines twisted apart, a thigh behind the body beyond hip extension
(checked at the ends of the thigh's magnitude interval, so a thigh that may lie in the image
plane is never signed by it), a visibly bent knee bent forwards, an upper arm pointing far
backwards, a face whose nose is not in front of its ears, whose ear line is not across the face
or that is turned more than ~80 deg from the chest, and a hidden ear nearer than the visible one.
Limits that no lift meets are released (the person keeps all its lifts) rather than dropping the
person.

A joint's depth is a sum of signed bone offsets. Each offset is taken at its nominal magnitude
(mid proportion, mid height) with its enumerated sign, and widened by ``spread`` x the quadrature
sum of the bones' half-widths (length errors of different bones are independent; a plain worst-
case interval sum labels almost nothing). Under a torso hypothesis the bounds of z_a - z_b are
the torso part plus, per chain, min / max over that chain's surviving combos (chains are
independent, so their combinations never need enumerating; two joints of one chain take the
hull of their difference). A pair is labelled only when the bounds exclude 0 by ``min_margin``
(x height) under EVERY surviving torso hypothesis; the margin sets the confidence (calibrated on
the mocap dev set and the dev world: 0.94 at the smallest margin to 0.99).

Everything is (N persons, T torso hypotheses, K combos, ...) numpy, in batches of persons. A
limit that compares one bone with a torso axis depends on that bone's sign only, so it is
evaluated per sign (not per combo), and a chain's min / max offsets are taken first over the
combos that the torso cannot tell apart, then over those groups per torso hypothesis; the pair
bounds are reduced one hypothesis and one row joint at a time. Every float operation is the one
a plain per-combo evaluation does, in the same order, so the labels do not depend on this.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..joints import LIMBS, MCPC21, limb_kind
from ..synth.annotator import COCO_OKS_SIGMAS
from .config import PriorConfig
from .pairs import Pairs

J = MCPC21.index
NUM_JOINTS = MCPC21.num_joints

# Bone length ranges as a fraction of standing height (joint centre to joint centre). Adult
# anthropometry (Winter 2009, Fig. 4.1: upper arm 0.186, forearm 0.146, thigh 0.245, shin 0.246,
# shoulder width 0.259 outer / ~0.2 joint centres, hip joint centres ~0.1) widened by the spread
# between people (children to tall adults, broad and narrow), and the face offsets of an adult
# head (ears +-0.044, nose 0.066, eyes 0.054 from the ears' midpoint).
BONE_RANGES = {
    "hip_line": (0.08, 0.16), "shoulder_line": (0.16, 0.26), "spine": (0.20, 0.33),
    "upper_arm": (0.14, 0.21), "forearm": (0.12, 0.18),
    "thigh": (0.20, 0.28), "shin": (0.20, 0.28),
    "neck": (0.06, 0.17), "ear_line": (0.07, 0.11), "nose": (0.05, 0.085),
    "eye": (0.04, 0.07),
}
# Bones: (name, range key, start point, end point). Start / end name a joint, or a midpoint
# ("mid:a,b"). Order: the torso group first, then one group per chain (``GROUPS``).
BONES = (
    ("hip_line", "hip_line", "right_hip", "left_hip"),
    ("shoulder_line", "shoulder_line", "right_shoulder", "left_shoulder"),
    ("spine", "spine", "mid:left_hip,right_hip", "mid:left_shoulder,right_shoulder"),
) + tuple((name, limb_kind(name), a, b) for name, a, b in LIMBS) + (
    ("neck", "neck", "mid:left_shoulder,right_shoulder", "mid:left_ear,right_ear"),
    ("ear_line", "ear_line", "right_ear", "left_ear"),
    ("nose", "nose", "mid:left_ear,right_ear", "nose"),
    ("left_eye", "eye", "mid:left_ear,right_ear", "left_eye"),
    ("right_eye", "eye", "mid:left_ear,right_ear", "right_eye"),
)
BONE = {b[0]: i for i, b in enumerate(BONES)}


def _click_sigma(spec: str) -> float:
    """COCO OKS sigma of a joint, or of a midpoint ``mid:a,b`` (independent clicks: /2 in
    quadrature)."""
    if spec.startswith("mid:"):
        a, b = spec[4:].split(",")
        return float(np.hypot(COCO_OKS_SIGMAS[a], COCO_OKS_SIGMAS[b])) / 2
    return COCO_OKS_SIGMAS[spec]


# Each bone's share of the annotation-noise allowance when ``oks_noise``: the spread of its image
# length (both ends clicked independently, sigma_a and sigma_b in quadrature), over the mean of
# all bones, so the allowance averages ``noise`` but a thigh (hip sigma 0.107) gets more than a
# nose (0.026).
_BONE_SIGMA = np.array([np.hypot(_click_sigma(b[2]), _click_sigma(b[3])) for b in BONES])
BONE_NOISE_WEIGHT = _BONE_SIGMA / _BONE_SIGMA.mean()
GROUPS = {
    "torso": ("hip_line", "shoulder_line", "spine"),
    "left_arm": ("left_upper_arm", "left_forearm"),
    "right_arm": ("right_upper_arm", "right_forearm"),
    "left_leg": ("left_thigh", "left_shin"),
    "right_leg": ("right_thigh", "right_shin"),
    "head": ("neck", "ear_line", "nose", "left_eye", "right_eye"),
}
# Each joint's depth relative to the pelvis (mid-hips) as a sum of bone offsets (coefficient, bone).
DEPTH_TERMS = {
    "pelvis": (),
    "left_hip": ((0.5, "hip_line"),), "right_hip": ((-0.5, "hip_line"),),
    "thorax": ((1.0, "spine"),),
    "left_shoulder": ((1.0, "spine"), (0.5, "shoulder_line")),
    "right_shoulder": ((1.0, "spine"), (-0.5, "shoulder_line")),
}
for _side, _s in (("left", 0.5), ("right", -0.5)):
    _sho = DEPTH_TERMS[f"{_side}_shoulder"]
    DEPTH_TERMS[f"{_side}_elbow"] = _sho + ((1.0, f"{_side}_upper_arm"),)
    DEPTH_TERMS[f"{_side}_wrist"] = DEPTH_TERMS[f"{_side}_elbow"] + ((1.0, f"{_side}_forearm"),)
    _hip = DEPTH_TERMS[f"{_side}_hip"]
    DEPTH_TERMS[f"{_side}_knee"] = _hip + ((1.0, f"{_side}_thigh"),)
    DEPTH_TERMS[f"{_side}_ankle"] = DEPTH_TERMS[f"{_side}_knee"] + ((1.0, f"{_side}_shin"),)
_EARS = DEPTH_TERMS["thorax"] + ((1.0, "neck"),)
DEPTH_TERMS["left_ear"] = _EARS + ((0.5, "ear_line"),)
DEPTH_TERMS["right_ear"] = _EARS + ((-0.5, "ear_line"),)
DEPTH_TERMS["nose"] = _EARS + ((1.0, "nose"),)
DEPTH_TERMS["left_eye"] = _EARS + ((1.0, "left_eye"),)
DEPTH_TERMS["right_eye"] = _EARS + ((1.0, "right_eye"),)
# Joints the model places (upper_neck, head_top are not modelled: no labels for them).
MODELLED = tuple(p for p in MCPC21.body_points if p in DEPTH_TERMS)
COEF = np.zeros((NUM_JOINTS, len(BONES)))
for _p, _terms in DEPTH_TERMS.items():
    for _c, _b in _terms:
        COEF[J[_p], BONE[_b]] += _c
MODELLED_IDX = np.array([J[p] for p in MODELLED])
PAIR_A, PAIR_B = (np.array(v) for v in zip(*itertools.combinations(MODELLED_IDX.tolist(), 2)))
# Each pair's row and column in a (M, M) grid of the modelled joints.
PAIR_ROW, PAIR_COL = (np.array(v) for v in zip(*itertools.combinations(range(len(MODELLED)),
                                                                        2)))
# The (start, end) of each row joint's pairs in pair order (combinations are row-major).
ROW_SPANS = [(int(np.searchsorted(PAIR_ROW, i)), int(np.searchsorted(PAIR_ROW, i, "right")))
             for i in range(len(MODELLED) - 1)]
PAIR_COEF2 = (COEF[PAIR_A] - COEF[PAIR_B]) ** 2  # (P, B)
# The joints each chain moves, and the pairs of two joints of one chain (their difference
# depends on the chain's combo jointly, not on each joint's own bounds).
CHAIN_JOINTS = {g: [j for j in range(NUM_JOINTS) if any(COEF[j, BONE[b]] for b in bones)]
                for g, bones in GROUPS.items() if g != "torso"}
INNER_PAIRS = [(int(a), int(b)) for a, b in zip(PAIR_A, PAIR_B)
               if any(a in m and b in m for m in CHAIN_JOINTS.values())]
INNER_PAIR_INDEX = np.array([int(np.flatnonzero((PAIR_A == a) & (PAIR_B == b))[0])
                             for a, b in INNER_PAIRS], dtype=np.int64)
INNER_OF_PAIR = np.full(len(PAIR_A), -1, np.int64)
INNER_OF_PAIR[INNER_PAIR_INDEX] = np.arange(len(INNER_PAIRS))
CHAIN_INNER = {g: [q for q, (a, b) in enumerate(INNER_PAIRS) if a in m and b in m]
               for g, m in CHAIN_JOINTS.items()}
# The bones in each pair's widening (the non-zero entries of its ``PAIR_COEF2`` row), in bone
# order and padded with zero terms: (P, RADIUS_TERMS) bone index and squared coefficient.
_TERMS = [np.flatnonzero(row) for row in PAIR_COEF2]
RADIUS_TERMS = max(len(t) for t in _TERMS)
PAIR_TERM_BONE = np.zeros((len(PAIR_A), RADIUS_TERMS), np.intp)
PAIR_TERM_COEF2 = np.zeros((len(PAIR_A), RADIUS_TERMS))
for _p, _t in enumerate(_TERMS):
    PAIR_TERM_BONE[_p, :len(_t)] = _t
    PAIR_TERM_COEF2[_p, :len(_t)] = PAIR_COEF2[_p, _t]


def _point(keypoints: np.ndarray, spec: str) -> np.ndarray:
    """(N, 2) a joint or a midpoint ``mid:a,b`` of (N, 21, 2) keypoints (NaN if unlabelled)."""
    if spec.startswith("mid:"):
        a, b = spec[4:].split(",")
        return 0.5 * (keypoints[:, J[a]] + keypoints[:, J[b]])
    return keypoints[:, J[spec]]


def bone_vectors(keypoints: np.ndarray) -> np.ndarray:
    """(N, B, 2) image vector of every bone (end - start), pixels; NaN where an end is missing."""
    return np.stack([_point(keypoints, b[3]) - _point(keypoints, b[2]) for b in BONES], axis=1)


def depth_intervals(vec: np.ndarray, height: np.ndarray, config: PriorConfig
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """|dz| interval of every bone from its image length and length range.

    Arguments:
        vec: (N, B, 2) image bone vectors, pixels (NaN unknown); height: (N,) person scale, pixels.
    Returns:
        d_lo, d_hi: (N, B) pixels; known: (N, B) bool (both ends labelled).
    """
    cfg = config.lifting
    lo = np.array([BONE_RANGES[b[1]][0] for b in BONES])
    hi = np.array([BONE_RANGES[b[1]][1] for b in BONES])
    h_lo = height / cfg.height_over
    h_hi = height / cfg.height_under
    l = np.sqrt((vec ** 2).sum(-1))
    known = np.isfinite(l)
    slack = cfg.noise * height[:, None] * (BONE_NOISE_WEIGHT[None] if cfg.oks_noise else 1.0)
    l_hi = np.where(known, l + slack, 0.0)
    l_lo = np.where(known, np.maximum(l - slack, 0.0), 0.0)
    L_lo = lo[None] * h_lo[:, None]
    L_hi = hi[None] * h_hi[:, None]
    d_lo = np.where(known, np.sqrt(np.clip(L_lo ** 2 - l_hi ** 2, 0, None)), 0.0)
    d_hi = np.sqrt(np.clip(L_hi ** 2 - l_lo ** 2, 0, None))
    return d_lo, d_hi, known


def nominal_depth(vec: np.ndarray, height: np.ndarray, config: PriorConfig) -> np.ndarray:
    """(N, B) |dz| of every bone at the middle of its length range and of the height band."""
    cfg = config.lifting
    nominal = np.array([0.5 * sum(BONE_RANGES[b[1]]) for b in BONES])
    h = height / np.sqrt(cfg.height_over * cfg.height_under)
    L = nominal[None] * h[:, None]
    return np.sqrt(np.clip(L ** 2 - (vec ** 2).sum(-1), 0, None))


def _signs(k: int) -> np.ndarray:
    """(2^k, k) every +-1 sign vector."""
    return np.array(list(itertools.product((1.0, -1.0), repeat=k))).reshape(-1, k)


# Bones whose sign is another bone's: the eyes sit forwards on the face like the nose (their
# offset from the ears' midpoint is mostly forward), so they share its sign.
SIGN_OF = {"left_eye": "nose", "right_eye": "nose"}


def group_signs(name: str) -> np.ndarray:
    """(K, nb) the sign combos of a group's bones (bones in ``SIGN_OF`` copy their leader)."""
    bones = GROUPS[name]
    free = [b for b in bones if b not in SIGN_OF]
    base = _signs(len(free))
    return np.stack([base[:, free.index(SIGN_OF.get(b, b))] for b in bones], axis=1)


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.sqrt((v ** 2).sum(-1, keepdims=True))
    return v / np.where(n > 0, n, 1.0)


def _vec3(vec2: np.ndarray, dz: np.ndarray) -> np.ndarray:
    """(..., 3) from (..., 2) image vectors (broadcast) and depth offsets (...)."""
    xy = np.broadcast_to(vec2, dz.shape + (2,))
    return np.concatenate([xy, dz[..., None]], axis=-1)


def _torso_keep(vec, mid, signs, known, config):
    """(N, T) bool torso hypotheses within joint limits, and their 3D left / forward axes."""
    cfg = config.lifting
    hb, wb, ub = BONE["hip_line"], BONE["shoulder_line"], BONE["spine"]
    dz = signs[None] * mid[:, None, [hb, wb, ub]]  # (N, T, 3)
    hip = _vec3(vec[:, None, hb], dz[..., 0])
    sho = _vec3(vec[:, None, wb], dz[..., 1])
    up = _vec3(vec[:, None, ub], dz[..., 2])
    hip_u, sho_u, up_u = _unit(hip), _unit(sho), _unit(up)
    keep = np.ones(dz.shape[:2], bool)
    both = (known[:, hb] & known[:, wb])[:, None]
    twist = (hip_u * sho_u).sum(-1)
    keep &= ~both | (twist >= cfg.max_twist_cos)
    left = _unit(np.where(known[:, None, hb, None], hip_u, 0) + np.where(
        known[:, None, wb, None], sho_u, 0))
    across = np.abs((left * up_u).sum(-1))
    keep &= ~known[:, None, ub] | (across <= cfg.max_torso_skew_cos)
    # A person facing f: left = up x f, so f = left x up (camera x right, y down, z forward).
    fwd = _unit(np.cross(left, up_u))
    return keep, left, fwd


# Groups whose joint limits are checked at the corners of the bones' magnitude intervals as well
# as at the middle (a combo survives if any of them meets the limits). The legs' hip-extension
# limit: a thigh that may lie in the image plane must not get its sign from it just because its
# middle magnitude tilts it (on the dev world that pinned standing people's thighs forwards, 84%
# precision). The knee's flexion limit is checked at the middle, and only for a knee visibly bent
# in the image (``knee_min_bend_sin``): annotation noise bends a straight leg a few degrees
# either way. The other groups are checked at the middle only: their corners cost coverage on
# the mocap dev set and bought no precision on the dev world.
CORNER_GROUPS = ("left_leg", "right_leg")


def _components(x, y, z):
    """Unit vector of components x, y, z (arrays of one shape), as a tuple of three arrays."""
    n = np.sqrt(x * x + y * y + z * z)
    n = np.where(n > 0, n, 1.0)
    return x / n, y / n, z / n


def _dot(p, q):
    return p[0] * q[0] + p[1] * q[1] + p[2] * q[2]


def _cross(p, q):
    return (p[1] * q[2] - p[2] * q[1], p[2] * q[0] - p[0] * q[2], p[0] * q[1] - p[1] * q[0])


def _bone_units(vec, mag, bones):
    """Unit 3D direction of each bone with a positive depth offset: per bone (x, y, z) (N,).

    The direction with the negative offset is (x, y, -z), bit for bit: the norm sees z squared
    and IEEE division and multiplication are symmetric in sign."""
    return [_components(vec[:, b, 0], vec[:, b, 1], mag[:, b]) for b in bones]


def _dot_torso(unit, axis):
    """(N, T, 2) the dot product of a bone's direction, with a positive ([..., 0]) and a negative
    ([..., 1]) depth offset, with a torso axis (N, T, 3); the same float operations, in the same
    order, as ``_dot`` on the signed 3D direction."""
    x, y, z = unit
    xy = x[:, None] * axis[:, :, 0] + y[:, None] * axis[:, :, 1]
    zz = z[:, None] * axis[:, :, 2]
    return np.stack([xy + zz, xy - zz], axis=-1)


def _sign_index(signs_of_bone: np.ndarray) -> np.ndarray:
    """(K,) 0 where a bone's sign in the combos is +, 1 where it is -."""
    return (signs_of_bone < 0).astype(np.intp)


def _by_sign(two: np.ndarray, signs_of_bone: np.ndarray) -> np.ndarray:
    """(N, T, K) from (N, T, 2) per sign of one bone (+ then -), for the combos' signs (K,)."""
    return two[:, :, _sign_index(signs_of_bone)]


def _chain_keep(name, vec, mid, signs, known, left, fwd, config, d_lo=None, d_hi=None):
    """Chain sign combos within joint limits under each torso hypothesis, factored: combo k
    survives torso hypothesis t iff ``base[n, k] & per_t[n, t, group[k]]``.

    Returns:
        base: (N, K) bool, the limits within the chain; per_t: (N, T, G) bool, the limits
        against the torso for each of G groups of combos that they cannot tell apart (a limit
        that compares one bone with a torso axis depends on that bone's sign only: it is
        evaluated for the two signs); group: (K,) int, each combo's group.
    For the legs (``d_lo``, ``d_hi`` given, ``CORNER_GROUPS``) the hip limit holds if it holds
    with the thigh at its middle or at either end of its magnitude interval; the knee limit at
    the middle."""
    cfg = config.lifting
    bones = [BONE[b] for b in GROUPS[name]]
    n, t = left.shape[:2]
    if name.endswith("_leg"):
        thigh_b, shin_b = bones
        ok = known[:, thigh_b][:, None, None]
        hip = np.zeros((n, t, 2), bool)
        for mag in (mid, d_lo, d_hi):
            hip |= _dot_torso(_bone_units(vec, mag, [thigh_b])[0], fwd) \
                >= cfg.min_thigh_forward_cos
        keep = ~ok | _by_sign(hip, signs[:, 0])  # (N, T, K)
        ok2 = ok & known[:, shin_b][:, None, None]
        # Only a knee visibly bent in the image: annotation noise alone bends a straight leg
        # by a few degrees, either way.
        t2, s2 = vec[:, thigh_b], vec[:, shin_b]
        with np.errstate(invalid="ignore", divide="ignore"):
            sin2d = np.abs(t2[:, 0] * s2[:, 1] - t2[:, 1] * s2[:, 0]) / (
                np.hypot(*t2.T) * np.hypot(*s2.T))
        ok2 = ok2 & (sin2d >= cfg.knee_min_bend_sin)[:, None, None]
        thigh, shin = (_signed(u, signs[:, i]) for i, u in
                       enumerate(_bone_units(vec, mid, bones)))
        bend = _cross(thigh, shin)  # the knee's flexion axis, (N, K) components
        per_t = tuple(left[:, :, c, None] for c in range(3))
        keep &= ~ok2 | (_dot(tuple(c[:, None] for c in bend), per_t)
                        >= -cfg.knee_hyperextension_sin)
        return np.ones((n, len(signs)), bool), keep, np.arange(len(signs))
    if name.endswith("_arm"):
        ok = known[:, bones[0]][:, None, None]
        fwd_ok = _dot_torso(_bone_units(vec, mid, bones[:1])[0], fwd) \
            >= cfg.min_upper_arm_forward_cos
        return np.ones((n, len(signs)), bool), ~ok | fwd_ok, _sign_index(signs[:, 0])
    # The head.
    units = _bone_units(vec, mid, bones)
    neck, ears, nose, leye, reye = (_signed(u, signs[:, i]) for i, u in enumerate(units))
    ok = (known[:, BONE["ear_line"]] & known[:, BONE["nose"]])[:, None]
    k = ~ok | (np.abs(_dot(ears, nose)) <= cfg.max_face_skew_cos)
    face = _cross(ears, neck)  # the head's forward axis from its left and up axes
    ok_n = ok & known[:, BONE["neck"]][:, None]
    k &= ~ok_n | (_dot(nose, face) >= cfg.min_nose_forward_cos)
    for eye in (leye, reye):
        k &= ~ok | (_dot(eye, nose) >= cfg.min_eye_forward_cos)
    eyes_ok = ok & (known[:, BONE["left_eye"]] & known[:, BONE["right_eye"]])[:, None]
    k &= ~eyes_ok | (_dot(tuple(a - b for a, b in zip(leye, reye)), ears) >= 0)
    # The neck turns the face at most ~80 deg from the chest's forward axis.
    ok_h = (known[:, BONE["nose"]] & known[:, BONE["ear_line"]])[:, None, None]
    nose_i = GROUPS["head"].index("nose")
    turn = _dot_torso(units[nose_i], fwd) >= cfg.min_head_torso_cos  # (N, T, 2)
    return k, ~ok_h | turn, _sign_index(signs[:, nose_i])


def _signed(unit, sign: np.ndarray):
    """(N, K) components of a bone's direction under the combos' signs (K,) of that bone."""
    x, y, z = unit
    k = len(sign)
    return (np.broadcast_to(x[:, None], (len(x), k)), np.broadcast_to(y[:, None], (len(y), k)),
            z[:, None] * sign[None])


# Left-right lines whose visibility flags fix their sign. Only the ears: a hidden ear with the
# other visible is nearly always turned away behind the head; a hidden shoulder or hip is often
# hidden by the person's own arm while it is the nearer one (on the mocap dev set with flags,
# the ears raise coverage at 97% precision; shoulders or hips drop it to 92-93%).
VISIBILITY_LINES = ("ear_line",)


def hidden_side(visibility: np.ndarray | None, n: int) -> np.ndarray:
    """(N, B) int8 the sign a left-right bone's depth offset must have by the visibility flags:
    +1 where its left end is marked hidden (v=1) and its right end visible (v=2) (the hidden end
    is the farther one), -1 the other way round, 0 unknown (also without flags)."""
    out = np.zeros((n, len(BONES)), np.int8)
    if visibility is None:
        return out
    for name in VISIBILITY_LINES:
        _, _, right, left = BONES[BONE[name]]
        vl, vr = visibility[:, J[left]], visibility[:, J[right]]
        out[:, BONE[name]] = np.where((vl == 1) & (vr == 2), 1, np.where((vl == 2) & (vr == 1),
                                                                          -1, 0))
    return out


def _masked_reduce(ufunc, values: np.ndarray, mask: np.ndarray, fill: float) -> np.ndarray:
    """(T, R, N) ``ufunc`` (np.minimum / np.maximum) over g of ``values[g]`` (G, R, N) where
    ``mask[g]`` (G, T, 1, N), else ``fill``: the groups folded in one at a time, in the order a
    reduction over a stacked (G, T, R, N) array takes them, without building that array."""
    out = np.where(mask[0], values[0], fill)
    for g in range(1, len(values)):
        ufunc(out, np.where(mask[g], values[g], fill), out=out)
    return out


@dataclass
class _Offsets:
    """Every joint's depth per torso hypothesis, before the pairs (persons on the last axis).

    z_torso: (T, 21, N) the torso part; off_min, off_max: (T, 21, N) its chain's offset range
    over the chain's surviving combos; inner_lo, inner_hi: (T, Q, N) the range of the difference
    of two joints of one chain (``INNER_PAIRS``); keep_t: (N, T) the surviving torso hypotheses;
    rad: (N, B) each bone's half-width about its nominal offset.
    """

    z_torso: np.ndarray
    off_min: np.ndarray
    off_max: np.ndarray
    inner_lo: np.ndarray
    inner_hi: np.ndarray
    keep_t: np.ndarray
    rad: np.ndarray


def _offsets(keypoints: np.ndarray, height: np.ndarray, config: PriorConfig,
             visibility: np.ndarray | None) -> _Offsets:
    """The enumeration: surviving torso hypotheses and, under each, every joint's depth range
    (``pair_bounds`` turns them into pair bounds)."""
    cfg = config.lifting
    n = len(keypoints)
    vec = bone_vectors(keypoints)
    known = np.isfinite(vec).all(-1)
    vec = np.where(known[..., None], vec, 0.0)
    d_lo, d_hi, _ = depth_intervals(vec, height, config)
    d_lo = np.where(known, d_lo, 0.0)
    mid = 0.5 * (d_lo + d_hi)  # the 3D bone directions the joint limits are checked on
    # Centres at the nominal offset (nominal proportion, mid-band height): a bone seen at about
    # full length is centred on 0 whatever its sign, so it never splits the hypotheses apart.
    nom = nominal_depth(vec, height, config)
    rad = np.maximum(d_hi - nom, nom - d_lo)
    tsigns = _signs(3)
    tb = [BONE[b] for b in GROUPS["torso"]]
    keep_t, left, fwd = _torso_keep(vec, mid, tsigns, known, config)
    side = hidden_side(visibility if cfg.use_visibility else None, n)
    keep_t &= (side[:, None, tb] * tsigns[None] >= 0).all(-1)
    # Limits that no lift meets say the keypoints (or the ranges) are off for this person, not
    # that the person cannot exist: release them rather than lose the person.
    keep_t |= ~keep_t.any(1, keepdims=True)
    # Every joint's depth: the torso part (exact per hypothesis), plus its chain's offset.
    # Persons on the last axis: the gathers by joint below copy whole rows.
    z_torso = np.einsum("tb,nb,jb->tjn", tsigns, nom[:, tb], COEF[:, tb])  # (T, 21, N)
    off_min = np.zeros_like(z_torso)
    off_max = np.zeros_like(z_torso)
    inner_lo = np.zeros((len(tsigns), len(INNER_PAIRS), n))
    inner_hi = np.zeros_like(inner_lo)
    for name, bones in GROUPS.items():
        if name == "torso":
            continue
        bi = [BONE[b] for b in bones]
        signs = group_signs(name)
        base, per_t, group = _chain_keep(name, vec, mid, signs, known, left, fwd, config,
                                         d_lo, d_hi)
        base &= (side[:, None, bi] * signs[None] >= 0).all(-1)
        keep = base[:, None] & per_t[:, :, group]  # (N, T, K)
        released = ~(keep & keep_t[..., None]).any((1, 2))  # released as above
        keep |= released[:, None, None]
        base |= released[:, None]
        per_t |= released[:, None, None]
        keep_t &= keep.any(-1)
        members = CHAIN_JOINTS[name]
        off = np.einsum("kb,nb,jb->kjn", signs, nom[:, bi], COEF[np.ix_(members, bi)])
        q = CHAIN_INNER[name]
        a = [members.index(INNER_PAIRS[i][0]) for i in q]
        b = [members.index(INNER_PAIRS[i][1]) for i in q]
        # Per joint its offset, per pair of the chain their difference: (K, m + Q, N).
        val = np.concatenate([off, off[:, a] - off[:, b]], axis=1)
        # min / max over the surviving combos: first within each group over the combos that
        # pass ``base`` (no torso hypothesis involved), then over the groups that pass
        # ``per_t`` under each hypothesis. (Exact: a min of mins.)
        groups = range(per_t.shape[2])
        g_min = np.stack([np.where(base[:, group == g].T[:, None], val[group == g], np.inf)
                          .min(0) for g in groups])  # (G, m + Q, N)
        g_max = np.stack([np.where(base[:, group == g].T[:, None], val[group == g], -np.inf)
                          .max(0) for g in groups])
        pt = per_t.transpose(2, 1, 0)[:, :, None]  # (G, T, 1, N)
        v_min = _masked_reduce(np.minimum, g_min, pt, np.inf)  # (T, m + Q, N)
        v_max = _masked_reduce(np.maximum, g_max, pt, -np.inf)
        m = len(members)
        off_min[:, members] = v_min[:, :m]
        off_max[:, members] = v_max[:, :m]
        if q:
            inner_lo[:, q] = v_min[:, m:]
            inner_hi[:, q] = v_max[:, m:]
    return _Offsets(z_torso, off_min, off_max, inner_lo, inner_hi, keep_t, rad)


def pair_radius(rad: np.ndarray, pair: np.ndarray, person: np.ndarray,
                spread: float) -> np.ndarray:
    """(K,) the widening of pair ``pair[k]`` of person ``person[k]``: ``spread`` x the quadrature
    sum of its bones' half-widths ``rad`` (N, B), sqrt(sum_b PAIR_COEF2[p, b] * rad[n, b]^2).

    The sum runs over the bones in bone order, starting from 0 (what a matrix product of the
    squares with ``PAIR_COEF2`` does); the bones a pair does not involve would add exact zeros,
    so only its own bones (``PAIR_TERM_BONE``, zero-padded) are added, and only for the
    entries asked for."""
    rad_sq = (rad ** 2).ravel()
    width = rad.shape[1]
    acc = np.zeros(len(pair))
    for t in range(RADIUS_TERMS):
        acc += rad_sq[person * width + PAIR_TERM_BONE[pair, t]] * PAIR_TERM_COEF2[pair, t]
    return spread * np.sqrt(acc)


def _dense_radius(rad: np.ndarray, spread: float) -> np.ndarray:
    """(N, P) ``pair_radius`` of every pair of every person."""
    n, p = len(rad), len(PAIR_A)
    return pair_radius(rad, np.tile(np.arange(p), n), np.repeat(np.arange(n), p),
                       spread).reshape(n, p)


def _bound_grid(o: _Offsets) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Centre bounds of z_a - z_b over the surviving torso hypotheses, before widening.

    Returns lo, hi: (P, N) float32 (the rows of ``INNER_PAIR_INDEX`` are superseded by the
    next two); inner_lo, inner_hi: (Q, N) float64 for the pairs of two joints of one chain.
    lo = min over surviving hypotheses of (z_a + min offset of a) - (z_b + max offset of b): a
    hypothesis that did not survive gets +inf (-inf) so it never wins the min (max). (float32
    for the big (T, M, M, N) grid: pixels to ~1e-4, far below any margin.)
    """
    n = o.keep_t.shape[0]
    z_torso = o.z_torso
    alive = o.keep_t.T[:, None]  # (T, 1, N)
    low = (z_torso + o.off_min)[:, MODELLED_IDX].astype(np.float32)  # (T, M, N)
    high = (z_torso + o.off_max)[:, MODELLED_IDX].astype(np.float32)
    lo = np.full((len(PAIR_ROW), n), np.inf, np.float32)  # (P, N)
    hi = np.full((len(PAIR_ROW), n), -np.inf, np.float32)
    buf = np.empty((len(MODELLED), n), np.float32)
    dead = ~alive[:, 0]  # (T, N)
    for t in range(len(z_torso)):
        low_a = np.where(dead[t], np.float32(np.inf), low[t])  # (M, N)
        high_a = np.where(dead[t], np.float32(-np.inf), high[t])
        # The pairs of row joint i are contiguous: (i, i+1), ..., (i, M-1).
        for i, (s, e) in enumerate(ROW_SPANS):
            tmp = np.subtract(low_a[i], high[t, i + 1:], out=buf[:e - s])
            np.minimum(lo[s:e], tmp, out=lo[s:e])
            tmp = np.subtract(high_a[i], low[t, i + 1:], out=buf[:e - s])
            np.maximum(hi[s:e], tmp, out=hi[s:e])
    # Two joints of one chain: the hull of their difference.
    torso = (z_torso[:, PAIR_A[INNER_PAIR_INDEX]] - z_torso[:, PAIR_B[INNER_PAIR_INDEX]])
    inner_lo = np.where(alive, torso + o.inner_lo, np.inf).min(0)
    inner_hi = np.where(alive, torso + o.inner_hi, -np.inf).max(0)
    return lo, hi, inner_lo, inner_hi


def pair_bounds(keypoints: np.ndarray, height: np.ndarray, config: PriorConfig,
                per_hypothesis: bool = False, visibility: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bounds of z_a - z_b over every surviving lift, for the pairs ``PAIR_A``, ``PAIR_B``.

    Bone offsets are taken at their nominal values (``nominal_depth``) with the enumerated
    signs; under a torso hypothesis the centre of z_a - z_b lies in the torso part plus, per
    chain, [min, max] over the chain's surviving combos (for two joints of different chains that
    is min / max of each joint's own offset; two joints of one chain take the hull of their
    difference). The bounds widen the centres by ``spread`` x the quadrature sum of the bones'
    half-widths (their length errors are independent; ``pair_radius``).

    Arguments:
        keypoints: (N, 21, 2) float pixels, NaN unlabelled; height: (N,) pixels (finite);
        visibility: (N, 21) uint8 flags or None.
    Returns:
        lo, hi: (N, P) pixels; hypotheses: (N,) int surviving torso hypotheses (>= 1). With
        ``per_hypothesis``: lo, hi (N, T, P) and the (N, T) bool mask.
    """
    cfg = config.lifting
    o = _offsets(keypoints, height, config, visibility)
    r = _dense_radius(o.rad, cfg.spread)  # (N, P)
    if per_hypothesis:
        z_torso, off_min, off_max = o.z_torso, o.off_min, o.off_max
        torso = z_torso[:, PAIR_A] - z_torso[:, PAIR_B]  # (T, P, N)
        c_lo = torso + off_min[:, PAIR_A] - off_max[:, PAIR_B]
        c_hi = torso + off_max[:, PAIR_A] - off_min[:, PAIR_B]
        c_lo[:, INNER_PAIR_INDEX] = torso[:, INNER_PAIR_INDEX] + o.inner_lo
        c_hi[:, INNER_PAIR_INDEX] = torso[:, INNER_PAIR_INDEX] + o.inner_hi
        r = r.T[None]  # (1, P, N)
        return ((c_lo - r).transpose(2, 0, 1), (c_hi + r).transpose(2, 0, 1), o.keep_t)
    lo32, hi32, inner_lo, inner_hi = _bound_grid(o)
    lo = lo32.T.astype(np.float64)  # (N, P)
    hi = hi32.T.astype(np.float64)
    lo[:, INNER_PAIR_INDEX] = inner_lo.T
    hi[:, INNER_PAIR_INDEX] = inner_hi.T
    return lo - r, hi + r, o.keep_t.sum(1)


def _at(grid: np.ndarray, inner: np.ndarray, pair: np.ndarray, person: np.ndarray
        ) -> np.ndarray:
    """(K,) float64 bounds of ``_bound_grid`` at the entries (pair, person)."""
    out = grid[pair, person].astype(np.float64)
    q = INNER_OF_PAIR[pair]
    own = q >= 0
    out[own] = inner[q[own], person[own]]
    return out


def torso_hypothesis(depth: np.ndarray) -> np.ndarray:
    """(N,) index into ``_signs(3)`` of the true (hip line, shoulder line, spine) depth signs,
    from (N, 21) depths (same orientation as ``DEPTH_TERMS``; a tie counts as +)."""
    signs = np.stack([
        depth[:, J["left_hip"]] - depth[:, J["right_hip"]],
        depth[:, J["left_shoulder"]] - depth[:, J["right_shoulder"]],
        0.5 * (depth[:, J["left_shoulder"]] + depth[:, J["right_shoulder"]])
        - 0.5 * (depth[:, J["left_hip"]] + depth[:, J["right_hip"]])], axis=1)
    # ``_signs(3)`` lists (+, -) products in binary order: a "-" in place k adds 2^(2 - k).
    return ((signs < 0) @ np.array([4, 2, 1])).astype(np.int64)


def lifting(keypoints: np.ndarray, labelled: np.ndarray, scale: np.ndarray,
            config: PriorConfig, visibility: np.ndarray | None = None) -> Pairs:
    """Within-person labels every surviving 3D lift agrees on (``lifting_with_torso``'s)."""
    return lifting_with_torso(keypoints, labelled, scale, config, visibility)[0]


def lifting_with_torso(keypoints: np.ndarray, labelled: np.ndarray, scale: np.ndarray,
                       config: PriorConfig, visibility: np.ndarray | None = None
                       ) -> tuple[Pairs, np.ndarray]:
    """Within-person labels every surviving 3D lift agrees on, and the (N, 8) bool torso
    hypotheses (``_signs(3)`` order) that survive for each person (all for a person without a
    scale).

    The widening only moves a bound away from the margin (it is >= 0), so it is computed for
    the pairs whose centre bounds already clear the margin (about a fifth of them), not for
    every pair of every person; the labels are the ones ``pair_bounds`` gives.

    Arguments:
        keypoints: (N, 21, 2) float pixels, NaN where unlabelled; labelled: (N, 21) bool;
        scale: (N,) float person height, pixels (NaN: the person is skipped);
        visibility: (N, 21) uint8 0/1/2 flags, or None (a source without occlusion flags).
    """
    cfg = config.lifting
    rows_all = np.flatnonzero(np.isfinite(scale) & (scale > 0))
    out = []
    keep_torso = np.ones((len(keypoints), len(_signs(3))), bool)
    for start in range(0, len(rows_all), cfg.batch):
        rows = rows_all[start:start + cfg.batch]
        h = scale[rows].astype(np.float64)
        o = _offsets(keypoints[rows].astype(np.float64), h, config,
                     None if visibility is None else visibility[rows])
        keep_torso[rows] = o.keep_t
        lo32, hi32, inner_lo, inner_hi = _bound_grid(o)
        margin_px = cfg.min_margin * h  # (N,)
        lab = labelled[rows].T
        ok = lab[PAIR_A] & lab[PAIR_B]  # (P, N); >= 1 lift always survives
        far = lo32 > margin_px  # float32 against float64: compared exactly
        close = hi32 < -margin_px
        far[INNER_PAIR_INDEX] = inner_lo > margin_px
        close[INNER_PAIR_INDEX] = inner_hi < -margin_px
        p, n = np.nonzero(ok & (far | close))  # candidates, pair-major
        r = pair_radius(o.rad, p, n, cfg.spread)
        lo = _at(lo32, inner_lo, p, n) - r
        hi = _at(hi32, inner_hi, p, n) + r
        m = margin_px[n]
        closer = hi < -m  # z_a - z_b < 0 in every lift: a closer
        farther = lo > m
        keep = np.flatnonzero(closer | farther)
        keep = keep[np.argsort(n[keep] * len(PAIR_A) + p[keep], kind="stable")]  # person-major
        p, n = p[keep], n[keep]
        label = np.where(closer[keep], 1, -1)
        margin = np.where(label == 1, -hi[keep], lo[keep]) / h[n]
        conf = cfg.confidence_min + (cfg.confidence_max - cfg.confidence_min) * np.clip(
            (margin - cfg.min_margin) / cfg.confidence_span, 0, 1)
        out.append(Pairs.make("lifting", rows[n], PAIR_A[p], rows[n], PAIR_B[p], label, conf,
                              margin))
    return Pairs.concat(out), keep_torso
