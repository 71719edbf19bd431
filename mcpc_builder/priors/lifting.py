"""Within-person relative depth by enumerating the 3D lifts of the 2D skeleton (interval arithmetic).

Each bone of true length L seen at image length l has a depth offset |dz| = sqrt(L^2 - l^2)
(Taylor 2000). L is not known exactly: it lies in an anthropometric RANGE relative to the person's
height (``BONE_RANGES``), and the height itself only within a band around the foreshortening-robust
``person_scale`` estimate; l carries annotation noise. So every bone's |dz| is an interval
[d_lo, d_hi], with an unknown sign.

The body is a torso (hip line, shoulder line, spine) carrying independent chains (each arm, each
leg, the head with its face points). A torso hypothesis fixes the three torso signs (8); a chain
combo fixes the signs of a chain's bones (4 per limb, 32 for the head). Combos that break joint
limits are pruned: hip and shoulder lines twisted apart, a thigh far behind the body (hip
extension), a knee bent forwards (hyperextension), an upper arm pointing backwards, a face whose
nose is not in front of its ears or whose ear line is not across the face. A joint's depth is a
sum of signed bone offsets, so under a torso hypothesis the interval of z_a - z_b is the torso
part plus, per chain, the hull over that chain's surviving combos (chains are independent, so
their combinations never need enumerating). A pair is labelled only when the interval excludes 0
by ``min_margin`` (x height) under EVERY surviving torso hypothesis; the margin sets the
confidence.

Everything is (N persons, T torso hypotheses, K combos, ...) numpy, in batches of persons.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..joints import MCPC21
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
    "hip_line": (0.085, 0.145), "shoulder_line": (0.175, 0.255), "spine": (0.22, 0.32),
    "upper_arm": (0.150, 0.210), "forearm": (0.130, 0.180),
    "thigh": (0.215, 0.275), "shin": (0.215, 0.275),
    "neck": (0.06, 0.16), "ear_line": (0.072, 0.100), "nose": (0.052, 0.080),
    "eye": (0.042, 0.066),
}
# Bones: (name, range key, start point, end point). Start / end name a joint, or a midpoint
# ("mid:a,b"). Order: the torso group first, then one group per chain (``GROUPS``).
BONES = (
    ("hip_line", "hip_line", "right_hip", "left_hip"),
    ("shoulder_line", "shoulder_line", "right_shoulder", "left_shoulder"),
    ("spine", "spine", "mid:left_hip,right_hip", "mid:left_shoulder,right_shoulder"),
    ("left_upper_arm", "upper_arm", "left_shoulder", "left_elbow"),
    ("left_forearm", "forearm", "left_elbow", "left_wrist"),
    ("right_upper_arm", "upper_arm", "right_shoulder", "right_elbow"),
    ("right_forearm", "forearm", "right_elbow", "right_wrist"),
    ("left_thigh", "thigh", "left_hip", "left_knee"),
    ("left_shin", "shin", "left_knee", "left_ankle"),
    ("right_thigh", "thigh", "right_hip", "right_knee"),
    ("right_shin", "shin", "right_knee", "right_ankle"),
    ("neck", "neck", "mid:left_shoulder,right_shoulder", "mid:left_ear,right_ear"),
    ("ear_line", "ear_line", "right_ear", "left_ear"),
    ("nose", "nose", "mid:left_ear,right_ear", "nose"),
    ("left_eye", "eye", "mid:left_ear,right_ear", "left_eye"),
    ("right_eye", "eye", "mid:left_ear,right_ear", "right_eye"),
)
BONE = {b[0]: i for i, b in enumerate(BONES)}
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
_MODELLED_IDX = np.array([J[p] for p in MODELLED])
PAIR_A, PAIR_B = (np.array(v) for v in zip(*itertools.combinations(_MODELLED_IDX.tolist(), 2)))


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
    slack = cfg.noise * height[:, None]
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


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.sqrt((v ** 2).sum(-1, keepdims=True))
    return v / np.where(n > 0, n, 1.0)


def _vec3(vec2: np.ndarray, dz: np.ndarray) -> np.ndarray:
    """(..., 3) from (..., 2) image vectors (broadcast) and depth offsets (...)."""
    xy = np.broadcast_to(vec2, dz.shape + (2,))
    return np.concatenate([xy, dz[..., None]], axis=-1)


def _torso_keep(vec, mid, signs, known, config):
    """(N, T) bool torso hypotheses within joint limits, and their 3D left / up / forward axes."""
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
    return keep, left, up_u, fwd


def _chain_keep(name, vec, mid, signs, known, left, up, fwd, config):
    """(N, T, K) bool: chain sign combos within joint limits under each torso hypothesis."""
    cfg = config.lifting
    bones = [BONE[b] for b in GROUPS[name]]
    dz = signs[None] * mid[:, None, bones]  # (N, K, nb)
    v = [_unit(_vec3(vec[:, None, b], dz[..., i]))[:, None] for i, b in enumerate(bones)]
    keep = np.ones((len(vec), left.shape[1], len(signs)), bool)
    f = fwd[:, :, None]
    if name.endswith("_leg"):
        thigh, shin = v
        ok = known[:, bones[0]][:, None, None]
        keep &= ~ok | ((thigh * f).sum(-1) >= cfg.min_thigh_forward_cos)
        bend = np.cross(thigh, shin)
        ok2 = ok & known[:, bones[1]][:, None, None]
        keep &= ~ok2 | ((bend * left[:, :, None]).sum(-1) >= -cfg.knee_hyperextension_sin)
    elif name.endswith("_arm"):
        upper = v[0]
        ok = known[:, bones[0]][:, None, None]
        keep &= ~ok | ((upper * f).sum(-1) >= cfg.min_upper_arm_forward_cos)
    elif name == "head":
        neck, ears, nose, leye, reye = v
        ok = (known[:, BONE["ear_line"]] & known[:, BONE["nose"]])[:, None, None]
        keep &= ~ok | (np.abs((ears * nose).sum(-1)) <= cfg.max_face_skew_cos)
        face = np.cross(ears, neck)  # the head's forward axis from its left and up axes
        ok_n = ok & known[:, BONE["neck"]][:, None, None]
        keep &= ~ok_n | ((nose * face).sum(-1) >= cfg.min_nose_forward_cos)
        for eye in (leye, reye):
            keep &= ~ok | ((eye * nose).sum(-1) >= cfg.min_eye_forward_cos)
        eyes_ok = ok & (known[:, BONE["left_eye"]] & known[:, BONE["right_eye"]])[:, None, None]
        keep &= ~eyes_ok | (((leye - reye) * ears).sum(-1) >= 0)
    return keep


def _centres(coef: np.ndarray, signs: np.ndarray, d_mid: np.ndarray, d_rad: np.ndarray):
    """Centre and squared radius of sum_b coef_b * s_b * d_b, d_b = d_mid_b +- d_rad_b.

    The bones' length errors are independent, so their radii add in quadrature; the signs are
    enumerated, never averaged.

    Arguments:
        coef: (P, nb); signs: (K, nb); d_mid, d_rad: (N, nb).
    Returns:
        centre, radius2: (N, K, P).
    """
    c = signs[:, None, :] * coef[None]  # (K, P, nb)
    centre = np.einsum("kpb,nb->nkp", c, d_mid)
    radius2 = np.einsum("pb,nb->np", coef ** 2, d_rad ** 2)[:, None]
    return centre, np.broadcast_to(radius2, centre.shape)


def pair_bounds(keypoints: np.ndarray, height: np.ndarray, config: PriorConfig
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bounds of z_a - z_b over every surviving lift, for the pairs ``PAIR_A``, ``PAIR_B``.

    Per torso hypothesis: the sum over chains of [min, max] of the chain's centre over its
    surviving combos, widened by ``spread`` x the quadrature sum of every bone's half-width.

    Arguments:
        keypoints: (N, 21, 2) float pixels, NaN unlabelled; height: (N,) pixels (finite).
    Returns:
        lo, hi: (N, P) pixels (lo > hi when no lift survives); hypotheses: (N,) int surviving
        torso hypotheses.
    """
    cfg = config.lifting
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
    coef = COEF[PAIR_A] - COEF[PAIR_B]  # (P, B)
    tsigns = _signs(3)
    tb = [BONE[b] for b in GROUPS["torso"]]
    keep_t, left, up, fwd = _torso_keep(vec, mid, tsigns, known, config)
    cmin, r2 = _centres(coef[:, tb], tsigns, nom[:, tb], rad[:, tb])  # (N, T, P)
    cmax = cmin.copy()
    r2 = r2.copy()
    for name, bones in GROUPS.items():
        if name == "torso":
            continue
        bi = [BONE[b] for b in bones]
        c = coef[:, bi]
        used = np.flatnonzero(np.abs(c).sum(1) > 0)
        signs = _signs(len(bi))
        keep = _chain_keep(name, vec, mid, signs, known, left, up, fwd, config)  # (N, T, K)
        keep_t &= keep.any(-1)
        cc, rr = _centres(c[used], signs, nom[:, bi], rad[:, bi])  # (N, K, U)
        cmin[:, :, used] += np.where(keep[..., None], cc[:, None], np.inf).min(2)
        cmax[:, :, used] += np.where(keep[..., None], cc[:, None], -np.inf).max(2)
        r2[:, :, used] += rr[:, None, 0]
    r = cfg.spread * np.sqrt(r2)
    lo = np.where(keep_t[..., None], cmin - r, np.inf).min(1)
    hi = np.where(keep_t[..., None], cmax + r, -np.inf).max(1)
    return lo, hi, keep_t.sum(1)


def lifting(keypoints: np.ndarray, labelled: np.ndarray, scale: np.ndarray,
            config: PriorConfig) -> Pairs:
    """Within-person labels every surviving 3D lift agrees on.

    Arguments:
        keypoints: (N, 21, 2) float pixels, NaN where unlabelled; labelled: (N, 21) bool;
        scale: (N,) float person height, pixels (NaN: the person is skipped).
    """
    cfg = config.lifting
    rows_all = np.flatnonzero(np.isfinite(scale) & (scale > 0))
    out = []
    for start in range(0, len(rows_all), cfg.batch):
        rows = rows_all[start:start + cfg.batch]
        h = scale[rows].astype(np.float64)
        lo, hi, hyp = pair_bounds(keypoints[rows].astype(np.float64), h, config)
        margin_px = cfg.min_margin * h[:, None]
        ok = labelled[rows][:, PAIR_A] & labelled[rows][:, PAIR_B] & (hyp > 0)[:, None]
        closer = ok & (hi < -margin_px)  # z_a - z_b < 0 in every lift: a closer
        farther = ok & (lo > margin_px)
        r, p = np.nonzero(closer | farther)
        label = np.where(closer[r, p], 1, -1)
        margin = np.where(label == 1, -hi[r, p], lo[r, p]) / h[r]
        conf = cfg.confidence_min + (cfg.confidence_max - cfg.confidence_min) * np.clip(
            (margin - cfg.min_margin) / cfg.confidence_span, 0, 1)
        out.append(Pairs.make("lifting", rows[r], PAIR_A[p], rows[r], PAIR_B[p], label, conf,
                              margin))
    return Pairs.concat(out)
