# distill-rvc developer tasks. `make install` then `make test` on a fresh machine.
PY ?= python3
# the newest model in a run folder: teach writes runs/<run>/<teacher>_<recipe>.pth (.drvc.pt: project format)
MODEL ?= $(shell ls -t runs/*/*.pth runs/*/*.drvc.pt 2>/dev/null | head -n 1)
# export/NAME.onnx: the model's file name without .pth/.drvc.pt (myvoice_4gb.pth -> export/myvoice_4gb.onnx)
NAME ?= $(patsubst %.drvc,%,$(basename $(notdir $(MODEL))))

.PHONY: install test test-slow test-wheel export-onnx tensorboard examples bench

install:  ## torch first (CPU build on these machines; pick a CUDA build yourself), then the package
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e '.[dev]'
	$(PY) -m pip install --no-deps torchfcpe==0.0.4  # FCPE's weights only (--f0 fcpe); --no-deps: no torchaudio, no other torch

test:  ## the default suite on 2 workers (CI runs this; real-size forward passes are behind -m slow)
	$(PY) -m pytest -q -n 2

test-slow:  ## real-size forward passes and long runs
	$(PY) -m pytest -q -m slow

test-wheel:  ## build the wheel, install it in a fresh venv, run recipes/plan/teach from outside the repo (CI runs this)
	PY=$(PY) bash tests/wheel_check.sh

export-onnx:  ## export MODEL (default: newest runs/*/*.pth) to export/NAME.onnx + NAME.json (EXPORT_ARGS=--fp16 ...)
	@test -n "$(MODEL)" || { echo "error: no runs/*/*.pth yet; pass MODEL=path/to/model.pth"; exit 2; }
	$(PY) -m distill_rvc export "$(MODEL)" --out "export/$(NAME).onnx" $(EXPORT_ARGS)

tensorboard:  ## watch teach runs
	tensorboard --logdir runs

examples:  ## rebuild the tiny teacher, the example dataset (examples/data/, clips/) and the stand-in hubert
	$(PY) examples/make_tiny_teacher.py
	$(PY) examples/make_example_dataset.py
	$(PY) examples/make_stand_in_hubert.py

bench:  ## CPU speed of the real-size teacher
	$(PY) bench/bench_infer.py
