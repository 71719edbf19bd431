"""The synthetic world: scenes of people seen by cameras, written as datasets in official formats.

``world`` draws scenes (skeletons, poses, cameras, visibility), ``render`` draws their images, and
``coco_format`` / ``mpii_format`` (here) and ``h36m_format`` / ``mpi3dhp_format`` write datasets.
``write_dataset`` is the one entry point; the embedded default data (``default_data``) and the test
fixtures come from it.
"""
