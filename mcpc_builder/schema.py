"""The MCPC data contract: Parquet schemas of persons and pairs shards, declared once.

Writer (``mcpc_builder.writer``) and readers (``wsp_model.data``) both import these. Bump
``SCHEMA_VERSION`` on any change; the manifest records it and readers refuse other versions.
"""

from __future__ import annotations

import pyarrow as pa

from .joints import MCPC21

SCHEMA_VERSION = 1
NUM_JOINTS = MCPC21.num_joints

PERSONS_SCHEMA = pa.schema([
    pa.field("person_id", pa.int64(), nullable=False),        # global, unique in the build
    pa.field("source", pa.string(), nullable=False),          # "coco", "mpii", ...
    pa.field("split", pa.string(), nullable=False),           # "train", "val", ...
    pa.field("image_id", pa.int64(), nullable=False),         # global image id in the build
    pa.field("image_path", pa.string(), nullable=False),      # relative to the source root
    pa.field("image_width", pa.int32(), nullable=False),
    pa.field("image_height", pa.int32(), nullable=False),
    pa.field("bbox", pa.list_(pa.float32(), 4), nullable=False),            # xywh, pixels
    pa.field("keypoints", pa.list_(pa.float32(), 2 * NUM_JOINTS), nullable=False),  # (21,2) flat, NaN unlabelled
    pa.field("visibility", pa.list_(pa.uint8(), NUM_JOINTS), nullable=False),        # 0/1/2
    pa.field("source_ann_id", pa.int64(), nullable=False),
    pa.field("scale", pa.float32(), nullable=False),          # person scale s, pixels (NaN if unknown)
    pa.field("grounded", pa.bool_(), nullable=False),         # P1 judged the person grounded
], metadata={"mcpc_schema_version": str(SCHEMA_VERSION), "layout": MCPC21.name})

PAIRS_SCHEMA = pa.schema([
    pa.field("person_a", pa.int64(), nullable=False),
    pa.field("joint_a", pa.int8(), nullable=False),           # MCPC-21 index
    pa.field("person_b", pa.int64(), nullable=False),         # == person_a for within-person pairs
    pa.field("joint_b", pa.int8(), nullable=False),
    pa.field("label", pa.int8(), nullable=False),             # +1 a closer, -1 a farther, 0 equal
    pa.field("confidence", pa.float32(), nullable=False),     # (0, 1]
    pa.field("prior", pa.string(), nullable=False),           # rule name, e.g. "foot_contact"
    pa.field("margin", pa.float32(), nullable=False),         # |dz| / scale estimate, NaN if none
], metadata={"mcpc_schema_version": str(SCHEMA_VERSION), "layout": MCPC21.name})

MANIFEST_NAME = "manifest.json"
PERSONS_SHARD = "persons-{:05d}.parquet"
PAIRS_SHARD = "pairs-{:05d}.parquet"
