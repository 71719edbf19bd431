"""The synthetic world: proportions, joint limits, ground contact, projection, visibility,
motion."""

import math

import numpy as np
import pytest

from mcpc_builder.synth import world as w
from mcpc_builder.synth.render import render_scene

J = w.J


def _camera_looking_along_y(height=1.5, f=500.0, size=(640, 480)):
    K = np.array([[f, 0, size[0] / 2], [0, f, size[1] / 2], [0, 0, 1.0]])
    return w.look_at_camera(np.array([0.0, 0.0, height]), np.array([0.0, 10.0, height]), 0.0, K,
                            *size)


def _standing(rng, xy, yaw, height=1.75):
    """A person in a neutral standing pose (yaw 0 faces +x)."""
    shape = w.sample_body(rng, height, False)
    joints, body = w.forward_kinematics(shape, w.PoseAngles(head_nod=0.0))
    R = w.rot_z(yaw)
    body = w._transform_body(body, R, np.zeros(3))
    t = np.array([xy[0], xy[1], -w.body_lowest_point(body)])
    return w.Person3D(joints @ R.T + t, "standing", False, height,
                      w._transform_body(body, np.eye(3), t), None, shape)


def test_same_seed_gives_the_same_scene():
    a = w.sample_scene(np.random.default_rng(7))
    b = w.sample_scene(np.random.default_rng(7))
    c = w.sample_scene(np.random.default_rng(8))
    assert len(a.people) == len(b.people)
    np.testing.assert_array_equal(a.camera.K, b.camera.K)
    for p, q in zip(a.people, b.people):
        np.testing.assert_array_equal(p.joints_world, q.joints_world)
    np.testing.assert_array_equal(w.visibility(a), w.visibility(b))
    assert not np.array_equal(a.camera.R, c.camera.R)


def test_neutral_stature_equals_sampled_height_and_children_have_larger_heads():
    rng = np.random.default_rng(0)
    for height, child in ((1.95, False), (1.5, False), (1.0, True), (1.45, True)):
        shape = w.sample_body(rng, height, child)
        joints, body = w.forward_kinematics(shape, w.PoseAngles(head_nod=0.0))
        stature = joints[J["head_top"], 2] - w.body_lowest_point(body)
        assert stature == pytest.approx(height, rel=0.02)
    adult = w.sample_body(rng, 1.75, False)
    kid = w.sample_body(rng, 1.05, True)
    assert kid.head / kid.height > 1.25 * adult.head / adult.height
    assert (kid.thigh + kid.shank) / kid.height < (adult.thigh + adult.shank) / adult.height


def test_scene_people_heights_in_range_and_about_fifteen_percent_children():
    rng = np.random.default_rng(1)
    cfg = w.WorldConfig()
    people = [p for _ in range(150) for p in w.sample_scene(rng, cfg).people]
    assert len(people) > 200
    kids = [p for p in people if p.is_child]
    adults = [p for p in people if not p.is_child]
    assert all(cfg.child_height[0] <= p.height <= cfg.child_height[1] for p in kids)
    assert all(cfg.adult_height[0] <= p.height <= cfg.adult_height[1] for p in adults)
    assert 0.07 < len(kids) / len(people) < 0.25
    assert max(p.height for p in kids) < np.mean([p.height for p in adults])


@pytest.mark.parametrize("pose", w.POSES)
def test_ground_contact_by_pose(pose):
    rng = np.random.default_rng(2)
    for _ in range(25):
        p = w.build_person(rng, pose, 1.7, False, rng.uniform(-3, 3), np.zeros(2))
        z = p.joints_world[:, 2]
        lowest_surface = w.body_lowest_point(p.body)
        ankle = min(z[J["left_ankle"]], z[J["right_ankle"]])
        if pose in w.GROUNDED_POSES:
            assert lowest_surface == pytest.approx(0.0, abs=1e-9)
            # Feet on the ground (a walker's toe-off lifts the ankle a little higher).
            assert 0.02 < ankle < (0.15 if pose in ("standing", "sitting") else 0.2)
        elif pose == "jumping":
            assert lowest_surface >= 0.1 - 1e-9  # off the ground
        else:  # lying: on the ground, nothing high
            assert lowest_surface == pytest.approx(0.0, abs=1e-9)
            assert z.max() < 0.8
        if pose == "sitting":
            # Pelvis at seat height: above the knees' floor, below standing hip height.
            assert 0.3 < z[J["pelvis"]] < 0.53 * 1.7


def test_knee_and_elbow_bend_one_way_and_limits_clamp():
    rng = np.random.default_rng(3)
    shape = w.sample_body(rng, 1.8, False)
    bent = w.PoseAngles(knee=(90.0, 90.0), elbow=(90.0, 90.0), hip_abd=(0, 0),
                        shoulder_abd=(0, 0)).clamped()
    over = w.PoseAngles(knee=(-40.0, 200.0), elbow=(-40.0, 200.0), hip_abd=(0, 0),
                        shoulder_abd=(0, 0)).clamped()
    assert over.knee == (0.0, 150.0) and over.elbow == (0.0, 150.0)
    p, _ = w.forward_kinematics(shape, bent)
    for side in ("left", "right"):
        # Local frame: x forward. A bent knee puts the ankle behind it, a bent elbow the wrist
        # in front of it.
        assert p[J[f"{side}_ankle"], 0] < p[J[f"{side}_knee"], 0] - 0.2
        assert p[J[f"{side}_wrist"], 0] > p[J[f"{side}_elbow"], 0] + 0.15
    straight, _ = w.forward_kinematics(shape, over)
    assert straight[J["left_ankle"], 0] == pytest.approx(straight[J["left_knee"], 0], abs=1e-9)
    # Random people of every pose: knees never bend forwards, no joint past 150 degrees.
    for _ in range(200):
        pose = w.POSES[int(rng.integers(len(w.POSES)))]
        person = w.build_person(rng, pose, 1.7, False, rng.uniform(-3, 3), np.zeros(2))
        P = person.joints_world
        lateral = P[J["left_hip"]] - P[J["right_hip"]]
        for side in ("left", "right"):
            thigh = P[J[f"{side}_knee"]] - P[J[f"{side}_hip"]]
            shank = P[J[f"{side}_ankle"]] - P[J[f"{side}_knee"]]
            assert np.cross(thigh, shank) @ lateral >= -1e-9
            cos = thigh @ shank / np.linalg.norm(thigh) / np.linalg.norm(shank)
            assert math.degrees(math.acos(np.clip(cos, -1, 1))) <= 150 + 1e-6


def test_projection_is_the_pinhole_model():
    cam = _camera_looking_along_y(height=1.5, f=500.0)
    uv, z = cam.project(np.array([[0.0, 5.0, 1.5], [1.0, 5.0, 1.5], [0.0, 5.0, 0.5]]))
    np.testing.assert_allclose(z, [5.0, 5.0, 5.0])
    np.testing.assert_allclose(uv[0], [320, 240], atol=1e-9)
    np.testing.assert_allclose(uv[1], [320 + 100, 240], atol=1e-9)   # world +x is image right
    np.testing.assert_allclose(uv[2], [320, 240 + 100], atol=1e-9)   # lower is image down


def test_camera_height_pitch_roll_and_focal_in_config_ranges():
    rng = np.random.default_rng(4)
    cfg = w.WorldConfig()
    for _ in range(60):
        scene = w.sample_scene(rng, cfg)
        cam = scene.camera
        assert cfg.camera_height[0] <= cam.centre[2] <= cfg.camera_height[1]
        assert cfg.focal_factor[0] <= cam.K[0, 0] / cam.width <= cfg.focal_factor[1]
        assert (cam.width, cam.height) in cfg.image_sizes
        right = cam.R[0]  # camera x axis in world coordinates
        assert abs(math.degrees(math.asin(right[2]))) <= cfg.camera_roll + 1e-6
        for p in scene.people:
            d = np.hypot(*p.joints_world[J["pelvis"], :2])
            assert cfg.distance[0] - 0.5 <= d <= cfg.distance[1] + 0.5


def test_people_do_not_interpenetrate():
    rng = np.random.default_rng(5)
    for _ in range(40):
        people = w.sample_scene(rng, n_people=4).people
        for i in range(len(people)):
            for k in range(i + 1, len(people)):
                gap = np.linalg.norm(people[i].joints_world[J["pelvis"], :2]
                                     - people[k].joints_world[J["pelvis"], :2])
                assert gap > w.footprint_radius(people[i]) + w.footprint_radius(people[k])


def test_joint_behind_another_persons_torso_is_occluded():
    rng = np.random.default_rng(6)
    cam = _camera_looking_along_y()
    front = _standing(rng, (0.0, 4.0), -math.pi / 2)   # facing the camera
    back = _standing(rng, (0.0, 7.0), -math.pi / 2)
    vis = w.visibility(w.Scene(cam, [front, back]))
    for point in ("pelvis", "spine", "thorax"):
        assert vis[0, J[point]] == 2
        assert vis[1, J[point]] == 1
    # Alone, the back person's torso joints are visible.
    alone = w.visibility(w.Scene(cam, [back]))
    assert alone[0, J["pelvis"]] == 2 and alone[0, J["thorax"]] == 2


def test_face_is_hidden_when_the_person_faces_away():
    rng = np.random.default_rng(7)
    cam = _camera_looking_along_y()
    toward = w.visibility(w.Scene(cam, [_standing(rng, (0.0, 4.0), -math.pi / 2)]))[0]
    away = w.visibility(w.Scene(cam, [_standing(rng, (0.0, 4.0), math.pi / 2)]))[0]
    for point in ("nose", "left_eye", "right_eye"):
        assert toward[J[point]] == 2
        assert away[J[point]] == 1
    # Side view (facing +x, the camera sees the right side): the far (left) shoulder is hidden.
    side = w.visibility(w.Scene(cam, [_standing(rng, (0.0, 4.0), 0.0)]))[0]
    assert side[J["right_shoulder"]] == 2 and side[J["left_shoulder"]] == 1
    assert side[J["right_ear"]] == 2 and side[J["left_ear"]] == 1


def test_joints_outside_the_image_are_unlabelled():
    rng = np.random.default_rng(8)
    cam = _camera_looking_along_y(f=500.0)
    # Pelvis near the right image edge: x = 320 px / 500 px * 3 m = 1.92 m at 3 m depth.
    person = _standing(rng, (1.92, 3.0), -math.pi / 2)
    scene = w.Scene(cam, [person])
    uv, z, vis = scene.keypoints()
    # Pixel centres are integers: the image covers [-0.5, 639.5) x [-0.5, 479.5).
    inside = ((uv[0, :, 0] >= -0.5) & (uv[0, :, 0] < 639.5) & (uv[0, :, 1] >= -0.5)
              & (uv[0, :, 1] < 479.5))
    assert inside.any() and (~inside).any()
    assert np.all(vis[0, ~inside] == 0)
    assert np.all(vis[0, inside] > 0)
    assert np.all(z > 0)


def test_rendered_pixels_agree_with_visibility_flags():
    """Occluded joints are covered in the rendered depth buffer; visible ones are not (or only
    by their own body part)."""
    rng = np.random.default_rng(9)
    agree = {1: 0, 2: 0}
    total = {1: 0, 2: 0}
    for _ in range(15):
        scene = w.sample_scene(rng)
        rendering = render_scene(scene, rng)
        uv, z, vis = scene.keypoints()
        X = scene.joints_camera()
        for p, person in enumerate(scene.people):
            radius = w.joint_surface_radius(person.body)
            for j in np.flatnonzero(vis[p]):
                x, y = np.round(uv[p, j]).astype(int)
                covered = rendering.depth[y, x] < np.linalg.norm(X[p, j]) - radius[j] - 0.01
                if vis[p, j] == 2:  # a joint's own parts (e.g. the chest over the thorax) are fine
                    agree[2] += bool(not covered or rendering.person_index[y, x] == p)
                else:
                    agree[1] += bool(covered)
                total[int(vis[p, j])] += 1
    assert total[2] > 100 and total[1] > 20
    assert agree[2] / total[2] > 0.98
    assert agree[1] / total[1] > 0.9


def test_sample_motion_is_smooth_grounded_and_rigid():
    X = w.sample_motion(np.random.default_rng(10), 150, fps=50)
    assert X.shape == (150, 22, 3)
    step = np.linalg.norm(np.diff(X, axis=0), axis=2)
    assert step.max() < 0.12                       # < 6 m/s for any joint at 50 fps
    feet = np.minimum(X[:, J["left_ankle"], 2], X[:, J["right_ankle"], 2])
    assert np.all((feet > 0.02) & (feet < 0.2))
    for a, b in (("left_hip", "left_knee"), ("right_elbow", "right_wrist")):
        bone = np.linalg.norm(X[:, J[a]] - X[:, J[b]], axis=1)
        assert np.ptp(bone) < 1e-6
    assert np.isfinite(X).all()
    # A long walk stays inside the capture area.
    long = w.sample_motion(np.random.default_rng(11), 3000, fps=50, area_radius=1.8)
    path = long[:, J["pelvis"], :2]
    assert np.linalg.norm(np.diff(path, axis=0), axis=1).sum() > 20.0  # it does walk
    assert np.hypot(*path.T).max() < 1.8 + 0.5


def test_world_config_from_dict_rejects_unknown_pose():
    cfg = w.WorldConfig.from_dict({"child_fraction": 0.5, "distance": [3, 6]})
    assert cfg.distance == (3, 6) and cfg.child_fraction == 0.5
    with pytest.raises(ValueError, match="unknown poses"):
        w.WorldConfig(pose_weights=(("flying", 1.0),))
