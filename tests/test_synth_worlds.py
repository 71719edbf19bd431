"""Named worlds (dev, held_out), load_world, and people posed from a pose library."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mcpc_builder.joints import BODY_POINTS
from mcpc_builder.synth import world as w
from mcpc_builder.synth.pose_library import load_pose_library
from mcpc_builder.synth.scene import sample_scene
from mcpc_builder.synth.worlds import WORLDS_DIR, WorldConfig, load_world

B = {n: i for i, n in enumerate(BODY_POINTS)}
LIB_NAMES = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
             "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
             "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
             "neck", "pelvis", "head_top", "head_centre")


def write_library(path, n=6, seed=0):
    """A small library in the mocap-dev format, made from the world's own walkers (metres, Z up,
    floor z = 0, pelvis away from the origin), with a base-of-neck ``neck`` and ``head_centre``."""
    rng = np.random.default_rng(seed)
    poses = []
    for k in range(n):
        p = w.build_person(rng, ("walking", "running", "reaching")[k % 3], 1.6, False,
                           rng.uniform(-3, 3), rng.uniform(-2, 2, 2))
        j = p.joints_world
        named = {n: j[B[n]] for n in LIB_NAMES if n in B}
        named["neck"] = j[B["thorax"]] + 0.02
        named["head_centre"] = 2 * j[B["upper_neck"]] - named["neck"]  # upper neck = midpoint
        poses.append([named[n] for n in LIB_NAMES])
    np.savez(path, joints=np.asarray(poses, np.float32), joint_names=np.array(LIB_NAMES),
             activity=np.array(["walk0", "run", "punch"] * (n // 3)))
    return path


def test_default_world_is_worldconfig_default():
    assert load_world(None) == WorldConfig()
    assert load_world("default") == WorldConfig()


def test_named_worlds_load_and_held_out_differs_from_dev():
    dev, held = load_world("dev"), load_world("held_out")
    assert dev != WorldConfig() and held != WorldConfig()
    differing = {f.name for f in dataclasses.fields(WorldConfig)
                 if getattr(dev, f.name) != getattr(held, f.name)}
    # Other cameras, bodies, pose mix.
    assert {"camera_height", "focal_factor", "distance", "pose_weights"} <= differing
    assert "never tune" in (WORLDS_DIR / "held_out.yaml").read_text().lower()


def test_unknown_world_name_is_an_error_naming_it():
    with pytest.raises(FileNotFoundError, match="no_such_world"):
        load_world("no_such_world")


def test_world_yaml_poses_path_is_relative_to_the_yaml(tmp_path):
    lib = write_library(tmp_path / "lib.npz")
    (tmp_path / "mine.yaml").write_text("poses: lib.npz\nchild_fraction: 0.0\n")
    cfg = load_world(tmp_path / "mine.yaml")
    assert cfg.poses == str(lib.resolve()) and cfg.child_fraction == 0.0


def test_library_maps_points_by_name(tmp_path):
    lib = load_pose_library(str(write_library(tmp_path / "lib.npz")))
    raw = np.load(tmp_path / "lib.npz")["joints"].astype(float)
    names = list(LIB_NAMES)
    X = lib.joints
    assert X.shape == (6, 22, 3)
    # Pelvis moved over the origin, heights kept; thorax = mid-shoulders; upper neck halfway
    # from the neck base to the head centre; face points by name.
    assert np.allclose(X[:, B["pelvis"], :2], 0, atol=1e-6)
    assert np.allclose(X[:, B["pelvis"], 2], raw[:, names.index("pelvis"), 2], atol=1e-6)
    assert np.allclose(X[:, B["thorax"]], 0.5 * (X[:, B["left_shoulder"]]
                                                 + X[:, B["right_shoulder"]]))
    neck = raw[:, names.index("neck")] - np.c_[raw[:, names.index("pelvis"), :2], np.zeros(6)]
    centre = raw[:, names.index("head_centre")] - np.c_[raw[:, names.index("pelvis"), :2],
                                                         np.zeros(6)]
    assert np.allclose(X[:, B["upper_neck"]], 0.5 * (neck + centre), atol=1e-5)
    assert np.allclose(X[:, B["left_ear"]] - X[:, B["pelvis"]],
                       raw[:, names.index("left_ear")] - raw[:, names.index("pelvis")], atol=1e-5)
    assert list(lib.activity[:3]) == ["walk", "run", "punch"]  # trailing digits dropped
    assert abs(lib.stature - 1.6) < 0.12


def test_library_missing_names_is_an_error_naming_file_and_names(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, joints=np.zeros((2, 3, 3)), joint_names=np.array(["a", "b", "nose"]))
    with pytest.raises(ValueError, match=r"bad\.npz.*left_eye"):
        load_pose_library(str(path))


def test_library_people_keep_bone_lengths_up_to_body_scaling(tmp_path):
    path = str(write_library(tmp_path / "lib.npz"))
    lib = load_pose_library(path)
    cfg = WorldConfig(poses=path)
    limbs = [(B[a], B[b]) for a, b in (("left_hip", "left_knee"), ("left_knee", "left_ankle"),
                                       ("right_shoulder", "right_elbow"), ("pelvis", "thorax"),
                                       ("left_ear", "right_ear"), ("upper_neck", "head_top"))]
    checked = 0
    for seed in range(4):
        for p in sample_scene(np.random.default_rng(seed), cfg).people:
            assert p.pose in ("walk", "run", "punch")
            j = p.joints_world
            lengths = np.array([np.linalg.norm(j[a] - j[b]) for a, b in limbs])
            # Which library pose: the one whose bone-length ratios match, scaled by stature.
            scale = p.height / lib.stature
            ref = np.array([[np.linalg.norm(q[a] - q[b]) for a, b in limbs] for q in lib.joints])
            err = np.abs(ref * scale - lengths).max(axis=1)
            assert err.min() < 1e-6
            checked += 1
    assert checked >= 4


def test_library_fraction_mixes_library_and_pose_families(tmp_path):
    path = str(write_library(tmp_path / "lib.npz"))
    cfg = WorldConfig(poses=path, pose_library_fraction=0.5)
    poses = [p.pose for s in range(12) for p in sample_scene(np.random.default_rng(s), cfg).people]
    lib = sum(p in ("walk", "run", "punch") for p in poses)
    assert 0 < lib < len(poses)


def test_synth_cli_takes_world_and_poses(tmp_path):
    from mcpc_builder.cli import main

    lib = write_library(tmp_path / "lib.npz")
    out = tmp_path / "coco"
    assert main(["synth", "--format", "coco", "--out", str(out), "--n-images", "4",
                 "--world", "dev", "--poses", str(lib), "--quiet"]) == 0
    gt = np.load(out / "ground_truth" / "person_keypoints_train2017.npz")
    assert len(gt["pose"]) > 0
    assert main(["synth", "--format", "coco", "--out", str(tmp_path / "x"), "--n-images", "2",
                 "--world", "nowhere.yaml", "--quiet"]) == 2


def test_mpii_writer_files_library_activities_under_a_generic_category(tmp_path):
    import scipy.io

    from mcpc_builder.cli import main
    from mcpc_builder.synth.mpii_format import ACTIVITIES, MAT_NAME, activity_fields

    assert activity_fields("walking") == ACTIVITIES["walking"]
    assert activity_fields("kick") == ("miscellaneous", "kick", -1)
    lib = write_library(tmp_path / "lib.npz")
    out = tmp_path / "mpii"
    assert main(["synth", "--format", "mpii", "--out", str(out), "--n-images", "4",
                 "--world", "dev", "--poses", str(lib), "--quiet"]) == 0
    act = scipy.io.loadmat(out / MAT_NAME)["RELEASE"]["act"][0, 0]
    names = {str(np.ravel(act[k, 0]["act_name"])[0]) for k in range(len(act))}
    ids = {int(np.ravel(act[k, 0]["act_id"])[0]) for k in range(len(act))}
    assert names & {"walk", "run", "punch"} and -1 in ids


def _bvh_text() -> str:
    """A small CMU-style BVH (centimetres, Y up, T-pose rest) with three frames."""
    def leg(side, x):
        return f"""  JOINT {side}UpLeg
  {{
    OFFSET {x} -5 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT {side}Leg
    {{
      OFFSET 0 -44 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      JOINT {side}Foot
      {{
        OFFSET 0 -42 0
        CHANNELS 3 Zrotation Xrotation Yrotation
        JOINT {side}ToeBase
        {{
          OFFSET 0 -6 13
          CHANNELS 3 Zrotation Xrotation Yrotation
          End Site
          {{
            OFFSET 0 0 4
          }}
        }}
      }}
    }}
  }}
"""

    def arm(side, x):
        return f"""      JOINT {side}Arm
      {{
        OFFSET {x} 20 0
        CHANNELS 3 Zrotation Xrotation Yrotation
        JOINT {side}ForeArm
        {{
          OFFSET {x * 1.6} 0 0
          CHANNELS 3 Zrotation Xrotation Yrotation
          JOINT {side}Hand
          {{
            OFFSET {x * 1.3} 0 0
            CHANNELS 3 Zrotation Xrotation Yrotation
            End Site
            {{
              OFFSET {x * 0.4} 0 0
            }}
          }}
        }}
      }}
"""
    # The person's left is +x when facing +z with y up.
    head = """      JOINT Neck
      {
        OFFSET 0 25 0
        CHANNELS 3 Zrotation Xrotation Yrotation
        JOINT Head
        {
          OFFSET 0 10 0
          CHANNELS 3 Zrotation Xrotation Yrotation
          End Site
          {
            OFFSET 0 21 0
          }
        }
      }
"""
    hierarchy = ("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0 0\n"
                 "  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation\n"
                 + leg("Left", 9) + leg("Right", -9)
                 + "  JOINT Spine\n  {\n    OFFSET 0 10 0\n"
                 "    CHANNELS 3 Zrotation Xrotation Yrotation\n    JOINT Chest\n    {\n"
                 "      OFFSET 0 20 0\n      CHANNELS 3 Zrotation Xrotation Yrotation\n"
                 + head + arm("Left", 16) + arm("Right", -16) + "    }\n  }\n}\n")
    n_channels = 6 + 3 * (2 * 4 + 2 + 2 + 2 * 3)
    rows = []
    for k in range(3):
        v = np.zeros(n_channels)
        v[:3] = [5.0 * k, 97.0, 0.0]
        v[4] = 0.0
        v[7] = -25.0 * k          # left hip flexion about x (Zrot, Xrot, Yrot order)
        v[10] = 30.0 * k          # left knee
        rows.append(" ".join(f"{x:.3f}" for x in v))
    return hierarchy + "MOTION\nFrames: 3\nFrame Time: 0.033333\n" + "\n".join(rows) + "\n"


def test_bvh_pose_library_is_read_with_pybvh_and_mapped_by_name(tmp_path):
    pytest.importorskip("pybvh")
    path = tmp_path / "walk01.bvh"
    path.write_text(_bvh_text())
    lib = load_pose_library(str(path))
    X = lib.joints
    assert X.shape == (3, 22, 3) and list(lib.activity) == ["walk"] * 3  # digits dropped
    # Z up, floor at 0, the head above the pelvis, the feet on the floor.
    assert (X[:, B["head_top"], 2] > X[:, B["pelvis"], 2] + 0.5 * 50).all()
    # (the toes, 6 units below the ankles, are the lowest joints: the floor)
    assert abs(X[0, [B["left_ankle"], B["right_ankle"]], 2].min() - 6.0) < 1e-6
    # Thigh and shank keep the BVH's lengths (44, 42 units) in every frame.
    thigh = np.linalg.norm(X[:, B["left_knee"]] - X[:, B["left_hip"]], axis=1)
    shank = np.linalg.norm(X[:, B["left_ankle"]] - X[:, B["left_knee"]], axis=1)
    assert np.allclose(thigh, 44.0, atol=1e-6) and np.allclose(shank, 42.0, atol=1e-6)
    # Face points on the head, between upper neck and head top; left ear on the person's left.
    head = 0.5 * (X[:, B["upper_neck"]] + X[:, B["head_top"]])
    assert (np.linalg.norm(X[:, B["nose"]] - head, axis=1) < 21.0).all()
    left = X[:, B["left_shoulder"]] - X[:, B["right_shoulder"]]
    ears = X[:, B["left_ear"]] - X[:, B["right_ear"]]
    assert ((left * ears).sum(1) > 0).all()
    # The hip flexes the thigh forward over the frames: the knee moves ahead of the hip.
    fwd = np.cross(left[0], np.array([0.0, 0.0, 1.0]))  # x forward, y left, z up
    assert (X[2, B["left_knee"]] - X[2, B["left_hip"]]) @ fwd > 10.0
    people = sample_scene(np.random.default_rng(0), WorldConfig(poses=str(path))).people
    assert people and all(p.pose == "walk" for p in people)


def test_new_world_fields_at_their_defaults_draw_the_default_world_byte_for_byte(tmp_path):
    from mcpc_builder.synth import write_dataset

    # Every realism field spelled out at its default value (as a YAML world would).
    (tmp_path / "spelled.yaml").write_text(
        "poses: null\npose_library_fraction: 1.0\nbody_proportions: fixed\n"
        "length_spread: 1.0\nbreadth_spread: 1.0\ngait: synthetic\nseating: stool\n"
        "ground: {step_probability: 0.0, slope_probability: 0.0}\n"
        "annotator: {noise_scale: 0.0, self_hidden_marked_visible: 0.0}\n")
    spelled = load_world(tmp_path / "spelled.yaml")
    assert spelled == WorldConfig()
    a = write_dataset("coco", tmp_path / "a", seed=5, n_images=3, config=WorldConfig())
    b = write_dataset("coco", tmp_path / "b", seed=5, n_images=3, config=spelled)
    for rel in ("annotations/person_keypoints_train2017.json",
                "annotations/person_keypoints_val2017.json"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    # ... while a realistic world draws a different dataset from the same seed.
    c = write_dataset("coco", tmp_path / "c", seed=5, n_images=3, config=load_world("dev"))
    rel = "annotations/person_keypoints_train2017.json"
    assert (a / rel).read_bytes() != (c / rel).read_bytes()
