# Two commands matter: `make book` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium
# nbgrader shells out to alembic from its own environment.
export PATH := $(abspath $(BIN)):$(PATH)
export PYDEVD_DISABLE_FILE_VALIDATION := 1

ASSIGNMENTS := $(notdir $(wildcard solutions/ps*))

.PHONY: book test release grade bench clean venv system-packages

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[book,test]"
	touch $(STAMP)

## Build the HTML book into _build/html, executing every chapter (warnings are errors).
# Sphinx and the execution cache key on notebook text only: rebuild from scratch when the package changes.
book: $(STAMP)
	@sum=$$(cat src/roofline/*.py src/roofline/data/* | md5sum); \
	if [ "$$sum" != "$$(cat _build/.package-sum 2>/dev/null)" ]; then rm -rf _build; fi; \
	mkdir -p _build && echo "$$sum" > _build/.package-sum
	$(BIN)/jupyter-book build . --builder html -W --keep-going

## Run the whole test suite (package, book build, browser, problem sets, grading).
test: $(STAMP) system-packages
	$(BIN)/python -m pytest

# The browser tests drive Debian's Chromium (Playwright cannot download browsers offline);
# the gradebook tests start a PostgreSQL server. Installed here when run as root (as CI is).
system-packages:
	@missing=""; [ -x $(CHROMIUM) ] || missing="chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "make test needs Debian packages:$$missing (sudo apt-get install$$missing)"; exit 1; fi; \
	fi

## Regenerate exercises/ (the student versions) from solutions/.
release: $(STAMP)
	for a in $(ASSIGNMENTS); do $(BIN)/nbgrader generate_assignment $$a --force || exit 1; done

## Autograde everything under submitted/<student>/<assignment>/, export grades.csv, write feedback/.
# Every student gets a row in grades.csv (status + reason), whatever the submission does.
# Extra options: make grade GRADE_ARGS="--jobs 4 --force --assignment ps1_rooflines --lms download.zip"
grade: $(STAMP)
	$(BIN)/python -m coursegrade $(GRADE_ARGS)

## Timings (not tests): book build and package sweeps.
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/grading.py

clean:
	rm -rf _build autograded feedback gradebook.db grades.csv
