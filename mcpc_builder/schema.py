"""Kept for old imports: the data contract lives in ``mcpc_builder.contract``."""

from .contract import (MANIFEST_NAME, NUM_JOINTS, PAIRS_SCHEMA, PAIRS_SHARD,  # noqa: F401
                       PERSONS_SCHEMA, PERSONS_SHARD, SCHEMA_VERSION)
