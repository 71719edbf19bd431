"""Evaluate a fine-tuned 3D checkpoint on a test split: metrics JSON, a printed table, and PNGs of
predicted vs ground-truth skeletons.

Human3.6M (S9, S11; every frame of the mks0601 set): MPJPE (Protocol 1), PA-MPJPE (Protocol 2,
similarity Procrustes without reflection) and N-MPJPE, each action-wise averaged (what papers
quote) and frame-pooled, per action and per joint. MPI-INF-3DHP (TS1-TS6 valid frames,
``univ_annot3``): 3DPCK@150 mm and AUC over the 14 official joints, MPJPE over all 17, per
sequence and per activity. All root-relative with the ground-truth root depth (the head predicts
root-relative 3D; see ``head3d``).

Synthetic data is named: when the test root is the embedded synthetic default (or any
synthetic-world root) the table and ``results.json`` call it a "synthetic stand-in for Human3.6M"
(never plain "Human3.6M test"), and when the checkpoint was trained on synthetic data the report
says so (``provenance``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from mcpc_builder import atomic, joints
from mcpc_builder.errors import DataError

from . import metrics
from .checkpoint import load_checkpoint
from .head3d import load_finetuned, predict_batches
from .pose3d_data import CropConfig, Pose3DCrops, Pose3DRecords, load_records, resolve_root
from .provenance import checkpoint_training_data, is_synthetic_root, test_set_name


def predict_records(model, records: Pose3DRecords, crop: CropConfig, batch_size: int = 32,
                    num_workers: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(pred, gt): (N, J, 3) float64 root-relative mm for every record, in record order."""
    from torch.utils.data import DataLoader

    ds = Pose3DCrops(records, crop, augment=False)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    root = joints.LAYOUTS[records.layout].joint("pelvis")
    model.eval()
    pred, gt = predict_batches(model, loader, root)
    return pred.numpy().astype(np.float64), gt.numpy().astype(np.float64)


def report_for(dataset: str, pred: np.ndarray, gt: np.ndarray, records: Pose3DRecords) -> dict:
    """The dataset's standard metrics (see the module docstring)."""
    layout = joints.LAYOUTS[records.layout]
    root = layout.joint("pelvis")
    if dataset == "h36m":
        return metrics.summarize_h36m(pred, gt, records.group.astype(str), layout.joint_names, root)
    rep = metrics.summarize_3dhp(pred, gt, records.group.astype(str), layout.joint_names,
                                 joints.MPI3DHP_PCK_JOINTS, root)
    activity = records.extra.get("activity")
    if activity is not None and len(set(activity.tolist()) - {""}):
        rep["per_activity"] = metrics.summarize_3dhp(
            pred, gt, activity.astype(str), layout.joint_names, joints.MPI3DHP_PCK_JOINTS,
            root)["per_group"]
    return rep


def format_table(dataset: str, report: dict) -> str:
    """A plain-text table of a report."""
    lines = []
    synthetic = report.get("test_data_synthetic", False)
    if dataset == "h36m":
        lines.append(f"{test_set_name('h36m', synthetic)}, {report['num_frames']} frames; mm")
        lines.append(f"{'action':<14}{'MPJPE':>9}{'PA-MPJPE':>10}{'N-MPJPE':>9}")
        for a in report["mpjpe"]["per_action"]:
            lines.append(f"{a:<14}{report['mpjpe']['per_action'][a]:>9.1f}"
                         f"{report['pa_mpjpe']['per_action'][a]:>10.1f}"
                         f"{report['n_mpjpe']['per_action'][a]:>9.1f}")
        for k, name in (("action_wise", "avg (actions)"), ("frame_pooled", "avg (frames)")):
            lines.append(f"{name:<14}{report['mpjpe'][k]:>9.1f}{report['pa_mpjpe'][k]:>10.1f}"
                         f"{report['n_mpjpe'][k]:>9.1f}")
    else:
        lines.append(f"{test_set_name('3dhp', synthetic)} (valid frames, univ_annot3), "
                     f"{report['num_frames']} frames")
        lines.append(f"{'sequence':<22}{'3DPCK':>8}{'AUC':>8}{'MPJPE':>9}{'frames':>8}")
        groups = dict(report["per_group"])
        groups.update({f"[{k}]": v for k, v in report.get("per_activity", {}).items()})
        for g, r in groups.items():
            lines.append(f"{g:<22}{r['pck150']:>8.1f}{r['auc']:>8.1f}{r['mpjpe']:>9.1f}{r['num_frames']:>8}")
        lines.append(f"{'All':<22}{report['pck150']:>8.1f}{report['auc']:>8.1f}{report['mpjpe']:>9.1f}"
                     f"{report['num_frames']:>8}")
    for note in report.get("notes", []):
        lines.append(f"NOTE: {note}")
    return "\n".join(lines)


def plot_skeletons(pred: np.ndarray, gt: np.ndarray, layout: joints.JointLayout, path: Path,
                   titles: list[str] | None = None) -> Path:
    """PNG of K skeletons side by side, prediction (red) over ground truth (black).

    Arguments:
        pred, gt: (K, J, 3) root-relative camera-frame mm (x right, y down, z forward); drawn
            with y up and depth receding.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(pred)
    fig = plt.figure(figsize=(3.2 * k, 3.6))
    edges = layout.edges
    for i in range(k):
        ax = fig.add_subplot(1, k, i + 1, projection="3d")
        for pts, colour, label in ((gt[i], "k", "ground truth"), (pred[i], "tab:red", "prediction")):
            x, y, z = pts[:, 0], pts[:, 2], -pts[:, 1]
            for n, (a, b) in enumerate(edges):
                ax.plot([x[a], x[b]], [y[a], y[b]], [z[a], z[b]], color=colour, lw=2,
                        label=label if n == 0 else None)
        lim = max(np.abs(gt[i]).max(), 1.0) * 1.1
        ax.set_xlim(-lim, lim), ax.set_ylim(-lim, lim), ax.set_zlim(-lim, lim)
        ax.set_xlabel("x (mm)"), ax.set_ylabel("depth (mm)"), ax.set_zlabel("up (mm)")
        ax.view_init(elev=12, azim=-70)
        err = float(np.linalg.norm(pred[i] - gt[i], axis=-1).mean())
        ax.set_title((titles[i] + "\n" if titles else "") + f"MPJPE {err:.0f} mm", fontsize=8)
        if i == 0:
            ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    path = Path(path)
    return atomic.save_figure(fig, path, dpi=90)


def write_json(obj, path: Path) -> Path:
    return atomic.write_json(path, obj, indent=2)


def evaluate(checkpoint: str | Path, out_dir: str | Path, dataset: str | None = None,
             data_root: str | Path | None = None, batch_size: int = 32, n_figures: int = 4,
             records: Pose3DRecords | None = None, synthetic_records: bool | None = None) -> dict:
    """Evaluate ``checkpoint`` on ``dataset``'s test split (default: the one it was tuned on).

    Writes ``results.json``, ``results.txt`` and ``skeletons.png`` into ``out_dir``; returns the
    report (with ``table``). ``synthetic_records``: whether ``records`` passed in are synthetic
    (None: unknown, reported as not synthetic unless the root is).
    The checkpoint is read with ``weights_only=True`` (``checkpoint.load_checkpoint``).
    """
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    ckpt = load_checkpoint(checkpoint)
    kind = ckpt.get("meta", {}).get("kind") if isinstance(ckpt.get("meta"), dict) else None
    if kind != "finetune":
        what = ("a pre-training checkpoint" if kind == "pretrain"
                else f"not a fine-tuned checkpoint (meta.kind {kind!r})")
        raise DataError(checkpoint, f"{what}; evaluate needs a fine-tuned one "
                                    "(make finetune, or python -m pipelines.finetune)")
    model, meta = load_finetuned(ckpt)
    dataset = dataset or meta["dataset"]
    root = None
    if records is None:
        root = resolve_root(dataset, data_root)
        records = load_records(dataset, root, "test")
    if records.layout != meta["layout"]:
        raise DataError(checkpoint, f"predicts {meta['layout']} joints but {dataset} uses "
                                    f"{records.layout}")
    crop = CropConfig(**meta["crop"])
    pred, gt = predict_records(model, records, crop, batch_size)
    report = report_for(dataset, pred, gt, records)
    synthetic = bool(synthetic_records) if records is not None and root is None \
        else is_synthetic_root(root)
    trained = checkpoint_training_data(meta)
    notes = [n for n in (
        f"the test frames are synthetic (the embedded stand-in under {root}), not the real "
        f"{test_set_name(dataset, False)}" if synthetic else None, trained["note"]) if n]
    report.update({"dataset": dataset, "test_set": test_set_name(dataset, synthetic),
                   "test_data_synthetic": synthetic, "checkpoint": str(checkpoint),
                   "data_root": str(root) if root else None, "init": meta["backbone"].get("init"),
                   "checkpoint_synthetic_sources": trained["synthetic_sources"],
                   "checkpoint_trained_on_synthetic_only": trained["synthetic_only"],
                   "notes": notes})
    table = format_table(dataset, report)
    out_dir = Path(out_dir)
    write_json(report, out_dir / "results.json")
    atomic.write_bytes(out_dir / "results.txt", (table + "\n").encode())
    if n_figures and len(pred):
        pick = np.linspace(0, len(pred) - 1, min(n_figures, len(pred))).round().astype(int)
        titles = [f"{records.group[i]} #{i}" for i in pick]
        plot_skeletons(pred[pick], gt[pick], joints.LAYOUTS[records.layout],
                       out_dir / "skeletons.png", titles)
    report["table"] = table
    return report
