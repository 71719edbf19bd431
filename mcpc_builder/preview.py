"""`mcpc-build preview`: draw a build's pair labels on its images (PNG).

Each picture shows the persons' skeletons and the labels as arrows from the closer keypoint to
the farther one (dashed lines for "equal"), coloured by prior, thicker with more confidence.
Cross-person labels of one person pair are drawn as a single arrow between their roots, with the
number of pairs it stands for.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import atomic, contract
from .joints import MCPC21
from .priors.config import RULE_NAMES

PRIOR_COLOURS = {"foot_contact": "#1f77b4", "person_scale": "#ff7f0e",
                 "foreshortening": "#2ca02c", "facing": "#d62728", "occlusion": "#9467bd",
                 "lifting": "#8c564b", "pose_library": "#e377c2"}


def load_build(build_dir: Path, verify: str = "sizes"):
    """(manifest dict, persons DataFrame, pairs DataFrame) of a build folder, read and verified
    by the data contract's reader (``contract.read_build``)."""
    b = contract.read_build(build_dir, verify=verify)
    return b.manifest, b.persons.to_pandas(), b.pairs.to_pandas()


def pick_images(persons, pairs, n: int) -> list[int]:
    """``n`` image keys (source, split, image_id) with labels, spread evenly over the build
    (deterministic)."""
    if len(pairs) == 0:
        return []
    key = image_keys(persons)
    pid_to_img = dict(zip(persons.person_id.to_numpy(), key))
    imgs = sorted({pid_to_img[p] for p in np.unique(pairs.person_a.to_numpy())})
    if len(imgs) <= n:
        return imgs
    return [imgs[i] for i in np.linspace(0, len(imgs) - 1, n).round().astype(int)]


def image_keys(persons) -> list[tuple]:
    """(source, split, image_id) of each person row: source image ids repeat across sources."""
    return list(zip(persons.source, persons.split, persons.image_id.to_numpy().tolist()))


def draw_image(image_path: Path | None, people, labels, out_png: Path, title: str) -> None:
    """One PNG: the image (grey canvas if the file is missing), skeletons and labels.

    Arguments:
        people: DataFrame rows of the image's persons; labels: their pair rows.
    """
    import matplotlib

    matplotlib.use("Agg")
    import cv2
    import matplotlib.pyplot as plt

    w, h = int(people.image_width.iloc[0]), int(people.image_height.iloc[0])
    img = cv2.imread(str(image_path)) if image_path is not None and image_path.is_file() else None
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if img is not None else np.full((h, w, 3), 200,
                                                                                np.uint8)
    fig, ax = plt.subplots(figsize=(8, 8 * h / max(w, 1)), dpi=100)
    ax.imshow(img)
    kp = {int(r.person_id): np.asarray(r.keypoints, np.float32).reshape(-1, 2)
          for r in people.itertuples()}
    vis = {int(r.person_id): np.asarray(r.visibility) for r in people.itertuples()}
    for pid, pts in kp.items():
        for a, b in MCPC21.edges:
            if vis[pid][a] and vis[pid][b]:
                ax.plot(pts[[a, b], 0], pts[[a, b], 1], color="white", lw=1.5, alpha=0.8)
        ok = vis[pid] > 0
        ax.scatter(pts[ok, 0], pts[ok, 1], s=8, c=np.where(vis[pid][ok] == 2, "lime", "yellow"),
                   zorder=3)
    within = labels[labels.person_a == labels.person_b]
    cross = labels[labels.person_a != labels.person_b]
    for r in within.itertuples():
        _arrow(ax, kp[r.person_a][r.joint_a], kp[r.person_b][r.joint_b], r.label, r.prior,
               r.confidence)
    root = MCPC21.joint("pelvis")
    for (pa, pb, prior), grp in cross.groupby(["person_a", "person_b", "prior"], sort=True):
        r = grp.iloc[0]
        a = _centre(kp[pa], vis[pa], root)
        b = _centre(kp[pb], vis[pb], root)
        _arrow(ax, a, b, int(r.label), prior, float(grp.confidence.max()))
        mid = 0.5 * (a + b)
        ax.text(mid[0], mid[1], f"x{len(grp)}", color=PRIOR_COLOURS[prior], fontsize=8,
                bbox={"facecolor": "white", "alpha": 0.6, "pad": 1})
    handles = [plt.Line2D([], [], color=c, lw=2, label=n) for n, c in PRIOR_COLOURS.items()]
    ax.legend(handles=handles, loc="upper right", fontsize=7)
    ax.set_title(title, fontsize=9)
    # Zoom on the people (with room around them), never beyond the image.
    pts = np.concatenate([p[vis[i] > 0] for i, p in kp.items()] or [np.zeros((0, 2))])
    if len(pts):
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        pad = 0.3 * max(hi[0] - lo[0], hi[1] - lo[1], 40.0)
        ax.set_xlim(max(lo[0] - pad, 0), min(hi[0] + pad, w))
        ax.set_ylim(min(hi[1] + pad, h), max(lo[1] - pad, 0))
    else:
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
    ax.axis("off")
    fig.tight_layout()
    atomic.save_figure(fig, out_png)


def _centre(pts: np.ndarray, vis: np.ndarray, root: int) -> np.ndarray:
    if vis[root]:
        return pts[root]
    return np.nanmean(np.where((vis > 0)[:, None], pts, np.nan), axis=0)


def _arrow(ax, a, b, label: int, prior: str, confidence: float) -> None:
    """Arrow from the closer point to the farther one; dashed line for "equal"."""
    colour = PRIOR_COLOURS.get(prior, "black")
    lw = 0.5 + 2.5 * float(confidence)
    if label == 0:
        ax.plot([a[0], b[0]], [a[1], b[1]], ls="--", color=colour, lw=lw)
        return
    near, far = (a, b) if label > 0 else (b, a)
    ax.annotate("", xy=far, xytext=near,
                arrowprops={"arrowstyle": "->", "color": colour, "lw": lw, "alpha": 0.9})


def preview(build_dir, out, n: int = 8) -> list[Path]:
    """Write up to ``n`` PNGs of labelled images of a build; returns their paths."""
    build_dir, out = Path(build_dir), Path(out)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    manifest, persons, pairs = load_build(build_dir)   # refuses a missing or altered build
    out.mkdir(parents=True, exist_ok=True)
    roots = contract.source_roots(manifest, build_dir / contract.MANIFEST_NAME)
    synthetic = contract.synthetic_sources(manifest)
    if synthetic:
        print(f"note: SYNTHETIC DATA in this build: {', '.join(synthetic)}")
    keys = np.array([f"{a}/{b}/{c}" for a, b, c in image_keys(persons)], dtype=object)
    written = []
    for source, split, image_id in pick_images(persons, pairs, n):
        people = persons[keys == f"{source}/{split}/{image_id}"]
        ids = set(people.person_id.tolist())
        labels = pairs[pairs.person_a.isin(ids)]
        first = people.iloc[0]
        path = roots.get(first.source, Path(".")) / first.image_path
        png = out / f"preview-{first.source}-{first.split}-{int(image_id):012d}.png"
        counts = labels.prior.value_counts()
        tag = " [SYNTHETIC]" if first.source in synthetic else ""
        title = (f"{first.source}{tag}/{first.image_path}: {len(people)} persons, {len(labels)} pairs "
                 f"(" + ", ".join(f"{k} {counts[k]}" for k in RULE_NAMES if k in counts) + ")")
        draw_image(path, people, labels, png, title)
        written.append(png)
    return written


def add_arguments(parser) -> None:
    parser.add_argument("--build", required=True, help="MCPC build folder (with manifest.json)")
    parser.add_argument("--n", type=int, default=8, help="number of images")
    parser.add_argument("--out", default="out/preview", help="output folder for the PNGs")


def run(args) -> int:
    from .errors import check_number

    check_number("--n", args.n, low=1)  # before anything is read or created
    for png in preview(args.build, args.out, args.n):
        print(png)
    return 0
