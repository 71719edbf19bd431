"""The perspective priors written the plain way: loops over persons, pairs and joints in Python.

This is the benchmark's baseline (`bench_build`) and the tests' oracle: it must give the same
labels as the vectorised ``mcpc_builder.priors`` (same thresholds, same formulas), only slowly.
It reads the same ``PriorConfig`` and returns, per rule, the raw labels as tuples
``(person_a, joint_a, person_b, joint_b, label, confidence)``, and the merged labels.
"""

from __future__ import annotations

import math

from mcpc_builder.joints import COCO17, FACE_POINTS, MCPC21
from mcpc_builder.joints import LIMBS as BODY_LIMBS
from mcpc_builder.priors.config import RULE_NAMES, PriorConfig
from mcpc_builder.priors.foreshortening import LIMBS
from mcpc_builder.priors.person_scale import LIMB_SEGMENTS, TORSO

J = MCPC21.index
L_SHO, R_SHO, L_HIP, R_HIP = J["left_shoulder"], J["right_shoulder"], J["left_hip"], J["right_hip"]
L_KNE, R_KNE, L_ANK, R_ANK = J["left_knee"], J["right_knee"], J["left_ankle"], J["right_ankle"]
PELVIS = J["pelvis"]
NOSE, L_EYE, R_EYE, L_EAR, R_EAR = (J[p] for p in FACE_POINTS)
OCC_LIMBS = tuple((J[a], J[b]) for _, a, b in BODY_LIMBS)
SHOULDER_LINE, HIP_LINE = len(BODY_LIMBS), len(BODY_LIMBS) + 1  # rows of foreshortening.LIMBS
NUM_ANNOTATED = len(COCO17.body_points)


def _dist(p, q):
    return math.sqrt((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2)


def _ramp(x, threshold, low, high):
    t = min(max((x - threshold) / max(threshold, 1e-9), 0.0), 1.0)
    return low + (high - low) * t


def _clip_conf(c):
    return min(max(c, 1e-3), 1.0)


class Person:
    """One person as Python lists."""

    def __init__(self, row, image, kp, vis, width, height):
        self.row, self.image = row, image
        self.vis = [int(v) for v in vis]
        self.lab = [v > 0 and not (math.isnan(p[0]) or math.isnan(p[1]))
                    for v, p in zip(self.vis, kp)]
        self.kp = [tuple(p) if ok else (math.nan, math.nan) for p, ok in zip(kp, self.lab)]
        self.width, self.height = width, height


def scale_of(p: Person, config: PriorConfig):
    bounds, legs = [], False
    for k, (a, b, r) in enumerate(LIMB_SEGMENTS):
        if p.lab[a] and p.lab[b]:
            bounds.append(_dist(p.kp[a], p.kp[b]) / r)
            if k >= 4:
                legs = True
    if all(p.lab[j] for j in (L_SHO, R_SHO, L_HIP, R_HIP)):
        ms = ((p.kp[L_SHO][0] + p.kp[R_SHO][0]) / 2, (p.kp[L_SHO][1] + p.kp[R_SHO][1]) / 2)
        mh = ((p.kp[L_HIP][0] + p.kp[R_HIP][0]) / 2, (p.kp[L_HIP][1] + p.kp[R_HIP][1]) / 2)
        bounds.append(_dist(ms, mh) / TORSO)
    if len(bounds) < config.person_scale.min_segments or max(bounds) <= 0:
        return math.nan, legs
    return max(bounds), legs


def is_grounded(p: Person, s: float, config: PriorConfig) -> bool:
    cfg = config.foot_contact
    if not all(p.lab[j] for j in (L_SHO, R_SHO, L_HIP, R_HIP, L_KNE, R_KNE, L_ANK, R_ANK)):
        return False
    if math.isnan(s):
        return False
    y = [q[1] for q in p.kp]
    ank_low, ank_high = max(y[L_ANK], y[R_ANK]), min(y[L_ANK], y[R_ANK])
    others = max([y[j] for j in range(MCPC21.num_joints) if j not in (L_ANK, R_ANK) and p.lab[j]],
                 default=-math.inf)
    hip_y = 0.5 * (y[L_HIP] + y[R_HIP])
    sho_y = 0.5 * (y[L_SHO] + y[R_SHO])
    dx = 0.5 * (p.kp[L_HIP][0] + p.kp[R_HIP][0]) - 0.5 * (p.kp[L_SHO][0] + p.kp[R_SHO][0])
    dy = hip_y - sho_y
    tilt = math.degrees(math.atan2(abs(dx), dy))
    if not (ank_low >= others and ank_high - hip_y >= 0.5 * cfg.min_hip_height * s
            and ank_low - hip_y >= cfg.min_hip_height * s
            and min(y[L_KNE], y[R_KNE]) - hip_y >= cfg.min_knee_below_hip * s
            and dy > 0 and tilt <= cfg.max_torso_tilt_deg):
        return False
    border = cfg.border_margin * s
    xs = (p.kp[L_ANK][0], p.kp[R_ANK][0])
    return (ank_low <= p.height - 1 - border and min(xs) >= border
            and max(xs) <= p.width - 1 - border)


def cross_pairs(rule, near: Person, far: Person, ratio, conf, s_near, config, out):
    cfg = config.cross_person
    f_min = cfg.focal_min_factor * max(near.width, near.height)
    gap = (ratio - 1.0) * f_min / s_near
    if gap >= cfg.all_joints_min_gap:
        for ja in range(MCPC21.num_joints):
            for jb in range(MCPC21.num_joints):
                if near.lab[ja] and far.lab[jb]:
                    out.append((near.row, ja, far.row, jb, 1, conf))
    elif near.lab[PELVIS] and far.lab[PELVIS]:
        out.append((near.row, PELVIS, far.row, PELVIS, 1, conf))


def reference_priors(table, config: PriorConfig | None = None) -> dict:
    """Per-rule raw labels and merged labels of a PersonTable, computed person by person.

    Returns {"raw": {rule: [tuple]}, "merged": {(pa, ja, pb, jb): label}, "scale": [float],
    "grounded": [bool]} (rules as in ``config.enabled``; foreshortening signed by enabled rules).
    """
    config = config or PriorConfig()
    kp_all = table.keypoints.tolist()
    vis_all = table.visibility.tolist()
    img_all = table.image_index.tolist()
    W, H = table.image_width.tolist(), table.image_height.tolist()
    people = [Person(i, img_all[i], kp_all[i], vis_all[i], W[img_all[i]], H[img_all[i]])
              for i in range(len(kp_all))]
    scales, legs = zip(*[scale_of(p, config) for p in people]) if people else ((), ())
    grounded = [is_grounded(p, s, config) for p, s in zip(people, scales)]
    images: dict[int, list[Person]] = {}
    for p in people:
        images.setdefault(p.image, []).append(p)
    raw = {r: [] for r in RULE_NAMES}
    orders = {"foot_contact": [], "person_scale": []}

    # P1 ground contact.
    fc = config.foot_contact
    for p, s, g in zip(people, scales, grounded):
        if not g or not fc.within_person:
            continue
        yl, yr = p.kp[L_ANK][1], p.kp[R_ANK][1]
        drop = abs(yl - yr) / s
        if drop > fc.within_min_drop:
            lower, higher = (L_ANK, R_ANK) if yl > yr else (R_ANK, L_ANK)
            raw["foot_contact"].append(
                (p.row, lower, p.row, higher, 1,
                 _clip_conf(_ramp(drop, fc.within_min_drop, fc.within_confidence,
                                  fc.within_confidence_max))))
    for group in images.values():
        ground = [p for p in group if grounded[p.row]]
        rows = {p.row: max(p.kp[L_ANK][1], p.kp[R_ANK][1]) for p in ground}
        usable = list(ground)
        if len(ground) >= 3:
            n = len(ground)
            ss = [scales[p.row] for p in ground]
            yy = [rows[p.row] for p in ground]
            sum_s, sum_y = sum(ss), sum(yy)
            sum_ss = sum(v * v for v in ss)
            sum_sy = sum(a * b for a, b in zip(ss, yy))
            det = n * sum_ss - sum_s ** 2
            if det != 0:
                c = (n * sum_sy - sum_s * sum_y) / det
                y_h = (sum_y - c * sum_s) / n
                usable = [p for p, s_, y_ in zip(ground, ss, yy)
                          if abs(y_ - (y_h + c * s_)) / s_ <= fc.fit_max_residual]
        for i in range(len(usable)):
            for j in range(i + 1, len(usable)):
                a, b = usable[i], usable[j]
                big = max(scales[a.row], scales[b.row])
                drop = (rows[a.row] - rows[b.row]) / big
                if abs(drop) <= fc.cross_min_drop:
                    continue
                near, far = (a, b) if drop > 0 else (b, a)
                conf = _clip_conf(_ramp(abs(drop), fc.cross_min_drop, fc.cross_confidence,
                                        fc.cross_confidence_max))
                ratio = max(scales[near.row] / scales[far.row], 1.0)
                orders["foot_contact"].append((near.row, far.row))
                cross_pairs("foot_contact", near, far, ratio, conf, scales[near.row], config,
                            raw["foot_contact"])

    # P2 scale.
    ps = config.person_scale
    for group in images.values():
        ok = [p for p in group if not math.isnan(scales[p.row])
              and (legs[p.row] or not ps.require_legs)]
        for i in range(len(ok)):
            for j in range(i + 1, len(ok)):
                a, b = ok[i], ok[j]
                ratio = scales[a.row] / scales[b.row]
                if not (ratio >= ps.min_ratio or ratio <= 1.0 / ps.min_ratio):
                    continue
                near, far = (a, b) if ratio > 1 else (b, a)
                big = max(ratio, 1.0 / ratio)
                excess = (big - ps.min_ratio) / (ps.min_ratio - 1.0)
                conf = _clip_conf(ps.confidence_max - (ps.confidence_max - ps.confidence_at_min)
                                  * math.exp(-excess))
                orders["person_scale"].append((near.row, far.row))
                cross_pairs("person_scale", near, far, big, conf, scales[near.row], config,
                            raw["person_scale"])

    # P4 facing.
    fa = config.facing
    for p, s in zip(people, scales):
        v = p.vis
        vis = [x == 2 for x in v]
        hid = [x == 1 for x in v]
        x = [q[0] for q in p.kp]
        span = _dist(p.kp[L_EAR], p.kp[R_EAR])
        big_face = span >= fa.min_face_px
        asym = abs(x[NOSE] - 0.5 * (x[L_EAR] + x[R_EAR])) / span if span > 0 else math.nan
        square = asym <= fa.max_yaw_offset
        c = _clip_conf(fa.face_confidence)
        frontal = vis[NOSE] and vis[L_EYE] and vis[R_EYE] and vis[L_EAR] and vis[R_EAR] \
            and big_face
        if frontal and square and fa.face_order:
            for front in (NOSE, L_EYE, R_EYE):
                for ear in (L_EAR, R_EAR):
                    raw["facing"].append((p.row, front, p.row, ear, 1, c))
        if vis[L_EAR] and vis[R_EAR] and hid[NOSE] and big_face and square and fa.face_order:
            for ear in (L_EAR, R_EAR):
                raw["facing"].append((p.row, ear, p.row, NOSE, 1, c))
        if fa.self_occluded_face:
            for near, far in ((L_EAR, R_EAR), (R_EAR, L_EAR)):
                nose_side = _dist(p.kp[NOSE], p.kp[far]) * fa.self_occlusion_nose_ratio \
                    < _dist(p.kp[NOSE], p.kp[near])
                if vis[near] and hid[far] and vis[NOSE] and nose_side:
                    c2 = _clip_conf(fa.self_occlusion_confidence)
                    raw["facing"].append((p.row, near, p.row, far, 1, c2))
                    raw["facing"].append((p.row, NOSE, p.row, far, 1, c2))
        side = 0
        offset = (x[NOSE] - 0.5 * (x[L_EAR] + x[R_EAR])) / s
        if frontal and abs(offset) >= fa.turn_min_offset:
            side = 1 if offset < 0 else -1
        if vis[L_EAR] and hid[R_EAR]:
            side = 1
        if vis[R_EAR] and hid[L_EAR]:
            side = -1
        if side:
            lines = [(SHOULDER_LINE, L_SHO, R_SHO)]
            if fa.torso_side_hips:
                lines.append((HIP_LINE, L_HIP, R_HIP))
            for line, a, b in lines:
                la, lb, r = LIMBS[line]
                if p.lab[la] and p.lab[lb] and _dist(p.kp[la], p.kp[lb]) / (r * s) \
                        <= fa.torso_max_ratio:
                    raw["facing"].append((p.row, a, p.row, b, side,
                                          _clip_conf(fa.torso_confidence)))

    # P5 occlusion.
    oc = config.occlusion
    for group in images.values():
        regions = []
        for q in group:
            sq = scales[q.row]
            for k, (a, b) in enumerate(OCC_LIMBS):
                if q.vis[a] == 2 and q.vis[b] == 2 and not math.isnan(sq):
                    regions.append((q, k, q.kp[a], q.kp[b], oc.limb_radius * sq, (a, b)))
            if all(q.vis[j] == 2 for j in (L_SHO, R_SHO, L_HIP, R_HIP)):
                k = q.kp
                top = (0.5 * (k[L_SHO][0] + k[R_SHO][0]), 0.5 * (k[L_SHO][1] + k[R_SHO][1]))
                bot = (0.5 * (k[L_HIP][0] + k[R_HIP][0]), 0.5 * (k[L_HIP][1] + k[R_HIP][1]))
                width = max(_dist(k[L_SHO], k[R_SHO]), _dist(k[L_HIP], k[R_HIP]))
                regions.append((q, 8, top, bot, oc.torso_radius * 0.5 * width,
                                (L_SHO, R_SHO, L_HIP, R_HIP)))
        regions.sort(key=lambda r: r[0].row)
        for p in group:
            for j in range(NUM_ANNOTATED):
                if p.vis[j] != 1:
                    continue
                for q, k, a, b, radius, cover in regions:
                    same = q.row == p.row
                    if same and not oc.same_person:
                        continue
                    if same and j in cover:
                        continue
                    if same and MCPC21.body_points[j] in FACE_POINTS \
                            and not oc.face_behind_own_body:
                        continue
                    dx, dy = b[0] - a[0], b[1] - a[1]
                    t = ((p.kp[j][0] - a[0]) * dx + (p.kp[j][1] - a[1]) * dy) / max(
                        dx * dx + dy * dy, 1e-9)
                    t = min(max(t, 0.0), 1.0)
                    cx, cy = a[0] + t * dx, a[1] + t * dy
                    if math.hypot(p.kp[j][0] - cx, p.kp[j][1] - cy) <= radius:
                        for cj in cover:
                            raw["occlusion"].append((q.row, cj, p.row, j, 1,
                                                     _clip_conf(oc.confidence)))

    # P3 foreshortening: in-plane limbs, and tilted limbs signed by the other enabled rules.
    fs = config.foreshortening
    limb_of = {}
    for k, (a, b, _) in enumerate(LIMBS):
        limb_of[(a, b)] = k
        limb_of[(b, a)] = k

    def ratio_of(p, k):
        a, b, r = LIMBS[k]
        if not (p.lab[a] and p.lab[b]) or math.isnan(scales[p.row]):
            return math.nan
        return _dist(p.kp[a], p.kp[b]) / (r * scales[p.row])

    if fs.emit_equal:
        for p in people:
            for k in range(len(BODY_LIMBS)):
                q = ratio_of(p, k)
                a, b, r = LIMBS[k]
                if fs.equal_min_ratio <= q <= fs.equal_max_ratio and \
                        _dist(p.kp[a], p.kp[b]) >= fs.min_length_px:
                    raw["foreshortening"].append((p.row, a, p.row, b, 0,
                                                  _clip_conf(fs.equal_confidence)))
    for rule in ("facing", "occlusion", "foot_contact"):
        if rule not in config.enabled:
            continue
        for pa, ja, pb, jb, label, _ in raw[rule]:
            if pa != pb or label == 0 or (ja, jb) not in limb_of:
                continue
            q = ratio_of(people[pa], limb_of[(ja, jb)])
            if q <= fs.ordered_max_ratio:
                raw["foreshortening"].append((pa, ja, pb, jb, label,
                                              _clip_conf(fs.ordered_confidence)))

    if "lifting" in config.enabled:
        import numpy as np

        kp = np.asarray(table.keypoints, np.float64)
        vis = np.asarray(table.visibility)
        kp = np.where((vis > 0)[..., None] & np.isfinite(kp), kp, np.nan)
        raw["lifting"] = reference_lifting(kp, vis, np.asarray(scales, np.float64), config)

    # Combine: person pairs ordered oppositely by P1 and P2 lose all their cross labels, then
    # identical pairs merge and contradicting ones are dropped.
    sign = {}
    banned = set()
    for rule in ("foot_contact", "person_scale"):
        if rule not in config.enabled:
            continue
        for near, far in orders[rule]:
            key = (min(near, far), max(near, far))
            s_ = 1 if near == key[0] else -1
            if sign.setdefault(key, s_) != s_:
                banned.add(key)
    groups: dict = {}
    for rule in config.enabled:
        for pa, ja, pb, jb, label, conf in raw[rule]:
            if pa != pb and (min(pa, pb), max(pa, pb)) in banned:
                continue
            if (pa, ja) > (pb, jb):
                pa, ja, pb, jb, label = pb, jb, pa, ja, -label
            groups.setdefault((pa, ja, pb, jb), set()).add(label)
    merged = {k: next(iter(v)) for k, v in groups.items() if len(v) == 1}
    return {"raw": {r: raw[r] for r in config.enabled}, "merged": merged,
            "scale": list(scales), "grounded": grounded}


def reference_lifting(keypoints, visibility, scale, config: PriorConfig | None = None) -> list:
    """``lifting`` person by person, hypothesis by hypothesis, in plain Python.

    Arguments:
        keypoints: (N, 21, 2) pixels (NaN unlabelled); visibility: (N, 21) 0/1/2 or None;
        scale: (N,) person height, pixels.
    Returns the labels as tuples (person_a, joint_a, person_b, joint_b, label, confidence).
    """
    import itertools

    from mcpc_builder.priors.lifting import (BONE, BONE_NOISE_WEIGHT, BONE_RANGES, BONES, COEF,
                                             CORNER_GROUPS, GROUPS, MODELLED, VISIBILITY_LINES,
                                             group_signs)

    config = config or PriorConfig()
    cfg = config.lifting
    out = []

    def point(kp, spec):
        if spec.startswith("mid:"):
            a, b = spec[4:].split(",")
            pa, pb = kp[J[a]], kp[J[b]]
            return ((pa[0] + pb[0]) / 2, (pa[1] + pb[1]) / 2)
        return tuple(kp[J[spec]])

    def unit(v):
        n = math.sqrt(sum(c * c for c in v))
        return tuple(c / n for c in v) if n > 0 else tuple(v)

    def dot(u, v):
        return sum(a * b for a, b in zip(u, v))

    def cross(u, v):
        return (u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0])

    pairs = list(itertools.combinations([J[p] for p in MODELLED], 2))
    for i in range(len(keypoints)):
        h = float(scale[i])
        if not (math.isfinite(h) and h > 0):
            continue
        kp = [tuple(float(c) for c in q) for q in keypoints[i]]
        vec, known, d_lo, d_hi, nom = [], [], [], [], []
        for bone, (name, kind, start, end) in enumerate(BONES):
            a, b = point(kp, start), point(kp, end)
            v = (b[0] - a[0], b[1] - a[1])
            ok = all(math.isfinite(c) for c in v)
            v = v if ok else (0.0, 0.0)
            lo_r, hi_r = BONE_RANGES[kind]
            l_ = math.hypot(*v)
            L_lo, L_hi = lo_r * h / cfg.height_over, hi_r * h / cfg.height_under
            slack = cfg.noise * h * (float(BONE_NOISE_WEIGHT[bone]) if cfg.oks_noise else 1.0)
            l_hi = l_ + slack if ok else 0.0
            l_lo = max(l_ - slack, 0.0) if ok else 0.0
            d_lo.append(math.sqrt(max(L_lo ** 2 - l_hi ** 2, 0.0)) if ok else 0.0)
            d_hi.append(math.sqrt(max(L_hi ** 2 - l_lo ** 2, 0.0)))
            L_nom = 0.5 * (lo_r + hi_r) * h / math.sqrt(cfg.height_over * cfg.height_under)
            nom.append(math.sqrt(max(L_nom ** 2 - l_ ** 2, 0.0)))
            vec.append(v)
            known.append(ok)
        mid = [(a + b) / 2 for a, b in zip(d_lo, d_hi)]
        rad = [max(hi - n, n - lo) for lo, hi, n in zip(d_lo, d_hi, nom)]
        side = [0] * len(BONES)
        if visibility is not None and cfg.use_visibility:
            for name in VISIBILITY_LINES:
                _, _, right, left = BONES[BONE[name]]
                vl, vr = int(visibility[i][J[left]]), int(visibility[i][J[right]])
                side[BONE[name]] = 1 if (vl, vr) == (1, 2) else -1 if (vl, vr) == (2, 1) else 0

        def v3(b, s, mag=None):
            return (vec[b][0], vec[b][1], s * (mid if mag is None else mag)[b])

        def corners(bones):
            if not any(g in CORNER_GROUPS and GROUPS[g] == bones for g in GROUPS):
                return [list(mid)]
            bi = [BONE[b] for b in bones]
            choices = list(itertools.product((0, 1), repeat=len(bi))) if len(bi) <= 3 else \
                [(0,) * len(bi), (1,) * len(bi)]
            mags = [list(mid)]
            for choice in choices:
                m = list(mid)
                for b, c in zip(bi, choice):
                    m[b] = d_hi[b] if c else d_lo[b]
                mags.append(m)
            return mags

        # Torso hypotheses.
        tnames = GROUPS["torso"]
        tsigns = list(itertools.product((1.0, -1.0), repeat=3))
        axes, keep_t = [], []
        hb, wb, ub = (BONE[n] for n in tnames)
        for s in tsigns:
            any_ok = False
            for k_, mag in enumerate(corners(tnames)):
                hip_u, sho_u = unit(v3(hb, s[0], mag)), unit(v3(wb, s[1], mag))
                up_u = unit(v3(ub, s[2], mag))
                ok = True
                if known[hb] and known[wb] and dot(hip_u, sho_u) < cfg.max_twist_cos:
                    ok = False
                left = unit(tuple((hip_u[k] if known[hb] else 0.0)
                                  + (sho_u[k] if known[wb] else 0.0) for k in range(3)))
                if known[ub] and abs(dot(left, up_u)) > cfg.max_torso_skew_cos:
                    ok = False
                if k_ == 0:  # the axes the chains are checked against: at the middle
                    axes.append((left, up_u, unit(cross(left, up_u))))
                any_ok |= ok
            if any(side[b] * sg < 0 for b, sg in zip((hb, wb, ub), s)):
                any_ok = False
            keep_t.append(any_ok)
        if not any(keep_t):
            keep_t = [True] * len(tsigns)
        def limits_ok(name, bi, s, mag, left, fwd, limits=("hip", "knee")):
            v = [unit(v3(b, sg, mag)) for b, sg in zip(bi, s)]
            ok = True
            if name.endswith("_leg") and known[bi[0]]:
                if "hip" in limits:
                    ok &= dot(v[0], fwd) >= cfg.min_thigh_forward_cos
                t2, s2 = vec[bi[0]], vec[bi[1]]
                den = math.hypot(*t2) * math.hypot(*s2)
                bent = den > 0 and abs(t2[0] * s2[1] - t2[1] * s2[0]) / den >= cfg.knee_min_bend_sin
                if known[bi[1]] and "knee" in limits and bent:
                    ok &= dot(cross(v[0], v[1]), left) >= -cfg.knee_hyperextension_sin
            elif name.endswith("_arm") and known[bi[0]]:
                ok &= dot(v[0], fwd) >= cfg.min_upper_arm_forward_cos
            elif name == "head":
                neck, ears, nose, leye, reye = v
                if known[BONE["ear_line"]] and known[BONE["nose"]]:
                    ok &= abs(dot(ears, nose)) <= cfg.max_face_skew_cos
                    if known[BONE["neck"]]:
                        ok &= dot(nose, cross(ears, neck)) >= cfg.min_nose_forward_cos
                    ok &= dot(leye, nose) >= cfg.min_eye_forward_cos
                    ok &= dot(reye, nose) >= cfg.min_eye_forward_cos
                    if known[BONE["left_eye"]] and known[BONE["right_eye"]]:
                        ok &= dot(tuple(a - b for a, b in zip(leye, reye)), ears) >= 0
                if known[BONE["nose"]] and known[BONE["ear_line"]]:
                    ok &= dot(nose, fwd) >= cfg.min_head_torso_cos
            return ok

        # Chains.
        chain_keep = {}
        for name, bones in GROUPS.items():
            if name == "torso":
                continue
            bi = [BONE[b] for b in bones]
            signs = [tuple(r) for r in group_signs(name).tolist()]  # the eyes follow the nose
            table = []
            for t, (left, up, fwd) in enumerate(axes):
                row = []
                for s in signs:
                    if name in CORNER_GROUPS:  # hip limit at any corner, knee at the middle
                        ok = any(limits_ok(name, bi, s, mag, left, fwd, ("hip",))
                                 for mag in corners(bones)) \
                            and limits_ok(name, bi, s, mid, left, fwd, ("knee",))
                    else:
                        ok = limits_ok(name, bi, s, mid, left, fwd)
                    row.append(all(side[b] * sg >= 0 for b, sg in zip(bi, s)) and ok)
                table.append(row)
            if not any(table[t][k] for t in range(len(axes)) if keep_t[t]
                       for k in range(len(signs))):
                table = [[True] * len(signs) for _ in axes]
            keep_t = [kt and any(table[t]) for t, kt in enumerate(keep_t)]
            chain_keep[name] = (bi, signs, table)
        if not any(keep_t):
            continue
        for a, b in pairs:
            if not (math.isfinite(kp[a][0]) and math.isfinite(kp[b][0])):
                continue
            coef = [COEF[a][k] - COEF[b][k] for k in range(len(BONES))]
            r = cfg.spread * math.sqrt(sum(c * c * q * q for c, q in zip(coef, rad)))
            lo, hi = math.inf, -math.inf
            for t, s in enumerate(tsigns):
                if not keep_t[t]:
                    continue
                base = sum(coef[bb] * sg * nom[bb] for bb, sg in zip((hb, wb, ub), s))
                cmin = cmax = base
                for bi, signs, table in chain_keep.values():
                    cs = [sum(coef[bb] * sg * nom[bb] for bb, sg in zip(bi, sk))
                          for k, sk in enumerate(signs) if table[t][k]]
                    cmin += min(cs)
                    cmax += max(cs)
                lo, hi = min(lo, cmin - r), max(hi, cmax + r)
            m = cfg.min_margin * h
            if hi < -m or lo > m:
                label = 1 if hi < -m else -1
                margin = (-hi if label == 1 else lo) / h
                conf = cfg.confidence_min + (cfg.confidence_max - cfg.confidence_min) * min(
                    max((margin - cfg.min_margin) / cfg.confidence_span, 0.0), 1.0)
                out.append((i, a, i, b, label, _clip_conf(conf)))
    return out
