"""WSP model: pre-training on MCPC relative-depth pairs, fine-tuning and evaluation in 3D.

Main flow of pre-training (``wsp-train`` / ``make pretrain``):

    mcpc_data.read_build(dir)            MCPC shards -> flat arrays (mcpc_builder.contract's
                                         verified reader: shard list, sizes, sha256, rows)
    mcpc_data.McpcDataset                person-centred crops, heatmaps, in-region pairs, flips
    model.build_pose_depth_net(cfg)      ResNet-18/34/50 + deconv head: K heatmaps + depth map
    losses.heatmap_mse / ranking_loss    2D heatmaps; Chen et al. 2016 ranking on sampled depth
    pretrain.PretrainTask                the above as a task for ...
    engine.train(task, cfg, run_dir)     the one training loop (CPU, 1 GPU, torchrun DDP)

Fine-tuning (``finetune``) reuses ``engine.train`` and ``model.ResNetBackbone`` with a 3D head;
``metrics`` / ``evaluate`` score 3D predictions. Configs are frozen dataclasses (``config``).
"""
