# WSP toolkit. `make help` lists the targets; every target runs on a fresh machine with no data.
PY      ?= .venv/bin/python
VENV    ?= .venv
OUT     ?= out
MCPC    ?= $(OUT)/mcpc-default
CONFIG  ?= pipelines/configs/pretrain_small.yaml
GPUS    ?= 0
DATASET ?= h36m
INIT    ?= $(OUT)/pretrain/checkpoint.pt
CHECKPOINT ?= $(OUT)/finetune-$(DATASET)/checkpoint.pt

.PHONY: help setup test test-fast build synth-png audit preview pretrain finetune evaluate ablation bench bench-build bench-train clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup:  ## create .venv and install the project with torch (CPU build) and test tools
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[model,dev]'

test:  ## run the whole test suite (CPU, < 10 min on 2 cores)
	$(PY) -m pytest

test-fast:  ## run the tests not marked slow
	$(PY) -m pytest -m "not slow"

build:  ## build MCPC from COCO + MPII (COCO_ROOT= MPII_ROOT=; none: the embedded synthetic default; SYNTHETIC=mpii to mix on purpose; POSE_LIBRARY=FILE: opt-in pose-library prior)
	$(VENV)/bin/mcpc-build --sources coco mpii --out $(MCPC) $(if $(COCO_ROOT),--coco-root $(COCO_ROOT)) $(if $(MPII_ROOT),--mpii-root $(MPII_ROOT)) $(if $(SYNTHETIC),--synthetic $(SYNTHETIC)) $(if $(POSE_LIBRARY),--pose-library $(POSE_LIBRARY)) --overwrite

synth-png:  ## render one synthetic scene with its skeletons to $(OUT)/scene.png
	$(VENV)/bin/mcpc-build render --out $(OUT)/scene.png --seed 0

audit:  ## label precision vs synthetic ground-truth depth (WORLD=dev|held_out|FILE, POSES=FILE, POSE_LIBRARY=FILE)
	$(VENV)/bin/mcpc-build audit --out $(OUT)/audit$(if $(WORLD),-$(notdir $(basename $(WORLD))))$(if $(POSE_LIBRARY),-pose-library) \
		--world $(or $(WORLD),dev) $(if $(POSES),--poses $(POSES)) $(if $(POSE_LIBRARY),--pose-library $(POSE_LIBRARY))

# Only the default build path may be generated from the embedded synthetic data; an MCPC=DIR the
# user typed must hold a build (a typo is an error, never a place to generate data).
DEFAULT_MCPC := $(OUT)/mcpc-default
DEFAULT_DATA_FLAG = $(if $(filter $(DEFAULT_MCPC),$(MCPC)),--default-data)

preview: $(filter $(DEFAULT_MCPC)/manifest.json,$(MCPC)/manifest.json)  ## draw pair labels of a build on its images ($(OUT)/preview/*.png)
	$(VENV)/bin/mcpc-build preview --build $(MCPC) --n 8 --out $(OUT)/preview

$(DEFAULT_MCPC)/manifest.json:
	$(VENV)/bin/mcpc-build --sources coco mpii --out $(DEFAULT_MCPC) --overwrite

pretrain:  ## pre-train on MCPC shards (MCPC=DIR CONFIG=FILE GPUS=N for torchrun)
	$(PY) -m pipelines.pretrain --mcpc $(MCPC) $(DEFAULT_DATA_FLAG) --config $(CONFIG) --gpus $(GPUS) --out $(OUT)/pretrain

# On a fresh machine the default INIT / CHECKPOINT do not exist yet: make them first.
DEFAULT_INIT := $(OUT)/pretrain/checkpoint.pt
DEFAULT_CHECKPOINT := $(OUT)/finetune-$(DATASET)/checkpoint.pt

finetune: $(filter $(DEFAULT_INIT),$(INIT))  ## fine-tune on DATASET=h36m|3dhp (INIT=checkpoint|scratch; H36M_ROOT / MPI3DHP_ROOT for real data)
	$(PY) -m pipelines.finetune --dataset $(DATASET) --init $(INIT) --gpus $(GPUS) --out $(OUT)/finetune-$(DATASET)

evaluate: $(filter $(DEFAULT_CHECKPOINT),$(CHECKPOINT))  ## evaluate CHECKPOINT on DATASET's test split (MPJPE, PA-MPJPE, 3DPCK, AUC)
	$(PY) -m pipelines.evaluate --dataset $(DATASET) --checkpoint $(CHECKPOINT)

$(DEFAULT_INIT):
	$(MAKE) pretrain

$(OUT)/finetune-%/checkpoint.pt:
	$(MAKE) finetune DATASET=$*

ablation:  ## scratch / 2D-only / WSP pre-training x 3 seeds + dense-label control + depth-order probe, synthetic world (CPU, ~25-35 min; POSE_LIBRARY=FILE: also WSP with the pose-library prior)
	$(PY) -m pipelines.ablation --out $(OUT)/ablation --dense-control $(if $(POSE_LIBRARY),--library-control --pose-library $(POSE_LIBRARY))

bench: bench-build bench-train  ## all benchmarks

bench-build:  ## builder vs JSON parse vs per-person loop at COCO-train scale (POSE_LIBRARY=FILE: also with that prior)
	$(PY) -m pipelines.bench.bench_build --out $(OUT)/bench-build $(if $(POSE_LIBRARY),--pose-library $(POSE_LIBRARY))

bench-train: $(filter $(DEFAULT_MCPC)/manifest.json,$(MCPC)/manifest.json)  ## loader and training-step throughput (MCPC=DIR; default: the embedded synthetic build)
	$(PY) -m pipelines.bench.bench_train --mcpc $(MCPC) --out $(OUT)/bench-train

clean:  ## remove outputs (not the venv)
	rm -rf $(OUT)
