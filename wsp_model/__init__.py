"""WSP model: pre-training on MCPC relative-depth pairs, fine-tuning and evaluation in 3D.

Main flow of pre-training (``wsp-train`` / ``make pretrain``):

    mcpc_data.read_build(dir)            MCPC shards -> flat arrays (mcpc_builder.contract's
                                         verified reader: shard list, sizes, sha256, rows)
    mcpc_data.McpcDataset                person-centred crops, heatmaps, in-region pairs, flips
    model.build_pose_net(cfg)            ResNet-18/34/50 (torchvision keys) + 2.5D head: per joint
                                         a heatmap and a depth map
    losses.heatmap_kl / ranking_loss     2D heatmaps; Chen et al. 2016 ranking on per-joint depths
    pretrain.PretrainTask                the above as a task for ...
    engine.train(task, cfg, run_dir)     the one training loop (CPU, 1 GPU, torchrun DDP)

Fine-tuning (``finetune``) reuses ``engine.train`` and the WHOLE pre-trained network
(``model.IntegralPose3D``: its soft-argmax 2D + per-joint depth, times a learned metric scale);
``model.load_model(path)`` rebuilds either network from a checkpoint (weights_only).
``metrics`` / ``evaluate`` score 3D predictions; ``depth_probe`` scores depth order on unlabelled
synthetic pairs. Configs are frozen dataclasses (``config``).
"""
