"""mcpc_builder: official COCO / MPII annotations -> perspective priors -> MCPC Parquet shards.

The flow, one module per step: ``joints`` (layouts) -> ``readers`` (official formats to
``persons.PersonTable``) -> ``priors`` (relative-depth pairs) -> ``writer`` (shards + manifest,
``schema`` declares the columns). ``build.build`` runs it; ``cli`` is ``mcpc-build``.
``synth`` is the synthetic world that provides the embedded default data and ground truth.
No torch here.
"""

__version__ = "0.1.0"
