"""mcpc_builder: official COCO / MPII annotations -> perspective priors -> MCPC Parquet shards.

The flow, one module per step: ``joints`` (layouts) -> ``readers`` (official formats to
``persons.PersonTable``) -> ``priors`` (relative-depth pairs) -> ``writer`` (shards + manifest).
``contract`` is the data contract: schemas, folder layout (``persons/`` + ``pairs/`` Parquet
datasets, ``manifest.json``), ground-truth sidecar, the one verified reader and the folder lock.
``build.build`` runs it; ``cli`` is ``mcpc-build``.
``synth`` is the synthetic world that provides the embedded default data and ground truth.
No torch here.
"""

__version__ = "0.1.0"
