# carpark-gateway: `make run` for the simulated site, `make test` for the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= config/gateway.toml

.PHONY: run test lint typecheck bench clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The stamp files make re-runs instant while still reinstalling when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

# Debian packages the tests talk to as real peers (Mosquitto broker, socat for serial ptys,
# ffmpeg serving the RTSP and MJPEG camera streams).
system-deps:
	@missing=""; \
	command -v /usr/sbin/mosquitto >/dev/null 2>&1 || missing="$$missing mosquitto"; \
	command -v socat >/dev/null 2>&1 || missing="$$missing socat"; \
	command -v ffmpeg >/dev/null 2>&1 || missing="$$missing ffmpeg"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update && $$SUDO apt-get install -y $$missing; \
	fi

run: $(VENV)/.installed
	$(BIN)/carpark-gateway --config $(CONFIG) migrate
	$(BIN)/carpark-gateway --config $(CONFIG) run

test: $(VENV)/.installed-dev system-deps lint
	$(BIN)/python -m pytest -q -n 3

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check gateway drivers tests bench
	$(BIN)/mypy gateway drivers

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/api.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var
