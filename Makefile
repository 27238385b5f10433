# spinexr: the single entry point.
#   make demo    set up .venv (first time ~10 min: builds mmcv's ops) and run the main job:
#                phantom -> conversion -> train every detector briefly -> comparison table
#   make test    set up .venv if needed and run the whole test suite
#   make compat  check spinexr beside transformers 5, OpenCV 5 and the newest numpy (throwaway venv)
PY := .venv/bin/python
OUT ?= work_dirs/comparison
PYTEST_ARGS ?=

.PHONY: install demo test test-fast compat bench clean-venv

install:
	bash scripts/install.sh

demo: install
	$(PY) -m spinexr.cli.run_comparison --work-dir $(OUT)

test: install
	$(PY) -m pytest tests $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest tests -m "not slow" $(PYTEST_ARGS)

compat: install
	bash scripts/compat_check.sh

clean-venv:
	rm -rf .venv
