# Two commands set up everything on a fresh machine:
#   make demo   builds .venv (if needed), trains the quickstart texture network on a built-in image
#               and samples a 512x512 texture from it (outputs/quickstart.png)
#   make test   builds .venv (if needed) and runs the test suite (make test-all: with the slow README tests)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv demo demo-optimize test test-all bench clean

venv: $(STAMP)

# On x86-64 the pinned torch is a CUDA build and .venv takes about 5.6 GB (0.8 GB on aarch64). Say so in one
# line up front rather than let pip fail half-way with "No space left on device".
DISK_CHECK := import platform, shutil, sys; \
	need = 6.0 if platform.machine().lower() in ('x86_64', 'amd64') else 1.5; \
	free = shutil.disk_usage('.').free / 2**30; \
	sys.exit(f'error: building $(VENV) needs about {need:.1f} GB of free disk; {free:.1f} GB is free here') if free < need else None

# Reinstall only when the dependency lists change.
$(STAMP): requirements.txt setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -c "$(DISK_CHECK)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(PY) train.py --config configs/quickstart.yaml --overwrite true
	$(PY) synthesize.py --checkpoint checkpoints/quickstart/last.ckpt --size 512 512 --output outputs/quickstart.png

# The slow baseline on the same kind of input: Gatys texture synthesis by optimisation.
demo-optimize: $(STAMP)
	$(PY) optimize.py texture --style builtin:brick --size 128 --steps 150 --output outputs/demo_texture.png

# The tests marked slow (every README command end to end, tests/test_readme.py) keep `make test` under 10
# minutes by staying out of it; CI sets CI=true and runs them too, as `make test-all` does.
PYTEST_SELECT := $(if $(filter true,$(CI)),,-m "not slow")

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_SELECT)

test-all: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m bench.bench_optimize
	$(PY) -m bench.bench_texture_net
	$(PY) -m bench.bench_evaluate
	$(PY) -m bench.bench_transfer inference
	$(PY) -m bench.bench_transfer overhead
	$(PY) -m bench.bench_transfer large
	$(PY) -m bench.bench_studio
	$(PY) -m bench.bench_transfer quality     # about 3 hours on 2 cores

clean:
	rm -rf $(VENV) outputs .pytest_cache
