# The two set-up commands of the README:
#   make serve   install everything and serve the bundled echo engine on :1888
#   make test    install test needs, build the sample engines, run ctest and pytest
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
BUILD  := build
PORT   ?= 1888

.PHONY: serve test install install-test engines ctest ctest-asan pytest bench clean browser libb64 \
        train-digits

serve: install engines
	$(BIN)/aiges-load $(BUILD)/native_examples/libecho.so --port $(PORT)

test: install-test browser libb64 engines ctest ctest-asan pytest

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .

# [ray]: tests/ray_serve runs aiges on a local two-node Ray cluster.
install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,ray]'

# Debian's Chromium for tests/e2e/test_browser.py (the Swagger UI in a real browser);
# playwright drives it, and never downloads a browser of its own.
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; \
	  elif command -v sudo >/dev/null; then SUDO=sudo; \
	  else echo "browser: not root and no sudo: install chromium to run the browser test" >&2; exit 0; fi; \
	  $$SUDO apt-get update && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

# Debian's libb64 for perf_analyzer (tests/e2e/test_oip_perf.py; the binary comes with
# tritonclient 2.50.0, libcudart.so.12 with nvidia-cuda-runtime-cu12).
libb64:
	@test -e /usr/lib/x86_64-linux-gnu/libb64.so.0d || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; \
	  elif command -v sudo >/dev/null; then SUDO=sudo; \
	  else echo "libb64: not root and no sudo: install libb64-0d to run perf_analyzer" >&2; exit 0; fi; \
	  $$SUDO apt-get update && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libb64-0d; }

engines:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j 2

ctest: engines
	ctest --test-dir $(BUILD) --output-on-failure

# The C tests again under AddressSanitizer (and LeakSanitizer where the kernel allows).
ctest-asan:
	cmake -S . -B $(BUILD)-asan -DAIGES_ASAN=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build $(BUILD)-asan -j 2
	ctest --test-dir $(BUILD)-asan --output-on-failure

pytest:
	AIGES_BUILD_DIR=$(CURDIR)/$(BUILD) $(BIN)/python -m pytest -q

# The benchmark suite (benchmarks/suite.py): about 20 minutes; BENCH_ARGS=--quick for a smoke run.
bench: install engines
	$(BIN)/python benchmarks/suite.py $(BENCH_ARGS) --json benchmarks/results/suite.json

# Retrains the digits sample (tools/train_digits.py, needs the [train] extra: scikit-learn)
# and rewrites the committed model and held-out files; TRAIN_ARGS="--model-dir D --py-dir D"
# writes them elsewhere.
train-digits: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[train]'
	$(BIN)/python tools/train_digits.py $(TRAIN_ARGS)

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(VENV)
