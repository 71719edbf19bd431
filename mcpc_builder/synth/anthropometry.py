"""Body proportions drawn from anthropometric tables, each segment varying on its own.

``body.sample_body`` (the default world's bodies) scales one fixed set of fractions by stature with
a few per cent of jitter. Here every segment has its own published mean fraction of stature and
its own spread, so long-legged and short-legged, broad and narrow people occur, and children's
heads and legs follow their growth:

* **Means** (fractions of stature H) from Drillis & Contini's segment-length table as reproduced
  in Winter, *Biomechanics and Motor Control of Human Movement* (4th ed., Fig. 4.1): ankle height
  0.039, knee height 0.285, hip (greater trochanter) 0.530, shoulder 0.818, chin 0.870; upper arm
  0.186, forearm 0.146, foot 0.152; shoulder width 0.259 and hip width 0.191 (skin to skin;
  joint centres lie inside, see the constants).
* **Spreads** (standard deviation of each segment's ratio to stature): about 3% for long-bone
  lengths and the trunk, 5-6% for shoulder and hip breadth, 8-10% for girths, which follow body
  mass. These are the coefficients of variation of the ANSUR II adult survey (Gordon et al.
  2014; lengths 4-5%, breadths 5-7%, girths 8-12%) with the part explained by stature removed,
  rounded; ``length_spread`` and ``breadth_spread`` multiply them.
* **Children:** head height falls from about 1/5 of stature at 1 m to 1/7.7 (0.130) in adults, and
  hip height rises from about 0.46 to 0.53 (growth charts' sitting-height ratio falls from ~0.57
  to ~0.52 over the same range); both are interpolated by stature between 0.85 m and 1.60 m.

The stature the person ends up with is the sum of the drawn vertical segments (ankle height,
shank, thigh, trunk, neck, head); it is what ``BodyShape.height`` records.
"""

from __future__ import annotations

import numpy as np

from .body import BodyShape

# Mean fractions of stature (adult).
ANKLE, KNEE, HIP, SHOULDER, CHIN = 0.039, 0.285, 0.530, 0.818, 0.870
UPPER_ARM, FOREARM, FOOT = 0.186, 0.146, 0.152
# Joint-centre half widths: shoulder joints ~0.81 of the skin shoulder width, hip joint centres
# ~0.53 of the skin hip width.
SHOULDER_HALF = 0.5 * 0.81 * 0.259
HIP_HALF = 0.5 * 0.53 * 0.191
# Spreads (standard deviation of the ratio to stature).
SD_LENGTH = 0.03
SD_NECK = 0.08       # the neck's ends are poorly defined landmarks
SD_BREADTH = 0.055
SD_GIRTH = 0.09
CLIP_SD = 2.5


def _factor(rng: np.random.Generator, sd: float) -> float:
    return float(1.0 + sd * np.clip(rng.normal(), -CLIP_SD, CLIP_SD))


def sample_body_anthropometric(rng: np.random.Generator, height: float, is_child: bool,
                               length_spread: float = 1.0, breadth_spread: float = 1.0
                               ) -> BodyShape:
    """A body of about ``height`` metres with independently varying segments (see module doc).

    Arguments:
        height: target stature, metres (the result differs by the segments' spread).
        is_child: children's head and leg fractions follow growth (by stature).
        length_spread, breadth_spread: multipliers of the length and breadth/girth spreads.
    """
    H = height
    # 0 for a small child (0.85 m) ... 1 at 1.60 m and for adults.
    youth = 0.0 if not is_child else float(np.clip((1.60 - H) / 0.75, 0.0, 1.0))
    head_frac = (1.0 - CHIN) + 0.065 * youth
    hip_frac = HIP - 0.07 * youth
    neck_frac = (CHIN - SHOULDER) - 0.012 * youth
    torso_frac = 1.0 - hip_frac - head_frac - neck_frac
    sl, sb = SD_LENGTH * length_spread, SD_BREADTH * breadth_spread
    ankle = ANKLE * H * _factor(rng, sl)
    knee_frac = KNEE / HIP * hip_frac
    shank = (knee_frac - ANKLE) * H * _factor(rng, sl)
    thigh = (hip_frac - knee_frac) * H * _factor(rng, sl)
    torso = torso_frac * H * _factor(rng, sl)
    neck = neck_frac * H * _factor(rng, SD_NECK * length_spread)
    head = head_frac * H * _factor(rng, sl)
    upper_arm = UPPER_ARM * H * _factor(rng, sl)
    forearm = FOREARM * H * _factor(rng, sl)
    foot = FOOT * H * _factor(rng, sl)
    shoulder_half = SHOULDER_HALF * H * _factor(rng, sb)
    hip_half = HIP_HALF * H * _factor(rng, sb)
    # One build factor (mass) shared by all girths, and a little per part.
    build = _factor(rng, SD_GIRTH * breadth_spread)

    def girth(frac):
        return frac * H * build * _factor(rng, 0.04 * breadth_spread)

    stature = ankle + shank + thigh + torso + neck + head
    return BodyShape(
        height=stature, is_child=is_child, ankle_height=ankle, shank=shank, thigh=thigh,
        hip_half_width=hip_half, torso=torso, shoulder_half_width=shoulder_half, neck=neck,
        head=head, upper_arm=upper_arm, forearm=forearm, foot=foot,
        r_thigh=girth(0.042), r_shank=girth(0.029), r_upper_arm=girth(0.027),
        r_forearm=girth(0.021), r_neck=girth(0.03), r_hand=0.026 * H, r_foot=0.022 * H,
        torso_depth=girth(0.064), torso_width=girth(0.118),
    )
