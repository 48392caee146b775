# mcunet-tvm: `make demo` compiles the default model and runs it on an emulated
# Cortex-M7; `make test` runs the test suite. Both set everything up first.
PY := .venv/bin/python
MODEL ?= demo-cnn
TARGET ?= cortex-m7

.PHONY: setup demo test lint bench nas clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m mcunet_tvm.build --target $(TARGET) --model $(MODEL) --out build/demo --run

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest -q

lint: setup
	$(PY) -m ruff check .

bench: setup
	$(PY) scripts/bench.py

# TinyNAS, small complete run on the generated demo dataset (drop QUICK= for the full search)
QUICK ?= --quick
nas: setup
	$(PY) -m mcunet_tvm.nas --mcu stm32f746 --data demo --out build/nas $(QUICK)

clean:
	rm -rf build .pytest_cache
