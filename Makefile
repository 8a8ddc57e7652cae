# carpark-gateway: `make run` for the simulated site, `make test` for the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= config/gateway.toml

.PHONY: run test lint typecheck bench clean system-deps screenshot

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The assets of /docs (Swagger UI) and /redoc (ReDoc), served by the daemon itself so the
# pages work on a site without internet. Fetched once here by the npm client (`npm pack`
# downloads just the published package, no dependency tree), never at run time.
SWAGGER_UI_DIST := 5.35.0
REDOC := 2.5.4
DOCS_ASSETS := $(VENV)/share/carpark-gateway/docs

$(DOCS_ASSETS)/.installed: Makefile | $(BIN)/python
	@command -v npm >/dev/null 2>&1 || { \
		echo "installing: npm"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update && $$SUDO apt-get install -y npm; }
	rm -rf $(DOCS_ASSETS) && mkdir -p $(DOCS_ASSETS)
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	npm pack --silent --pack-destination "$$tmp" swagger-ui-dist@$(SWAGGER_UI_DIST) redoc@$(REDOC) >/dev/null && \
	tar -xzf "$$tmp"/swagger-ui-dist-$(SWAGGER_UI_DIST).tgz -C "$$tmp" && \
	cp "$$tmp"/package/swagger-ui-bundle.js "$$tmp"/package/swagger-ui-standalone-preset.js \
	   "$$tmp"/package/swagger-ui.css "$$tmp"/package/favicon-32x32.png $(DOCS_ASSETS)/ && \
	cp "$$tmp"/package/LICENSE $(DOCS_ASSETS)/LICENSE.swagger-ui && \
	rm -rf "$$tmp"/package && tar -xzf "$$tmp"/redoc-$(REDOC).tgz -C "$$tmp" && \
	cp "$$tmp"/package/bundles/redoc.standalone.js $(DOCS_ASSETS)/ && \
	cp "$$tmp"/package/LICENSE $(DOCS_ASSETS)/LICENSE.redoc
	@# ReDoc's menu footer loads its logo from cdn.redoc.ly (no option turns it off): show our
	@# own icon instead, so the page loads nothing from another host.
	sed -i 's#https://cdn.redoc.ly/redoc/logo-mini.svg#/docs/assets/favicon-32x32.png#' $(DOCS_ASSETS)/redoc.standalone.js
	! grep -q 'cdn.redoc.ly' $(DOCS_ASSETS)/redoc.standalone.js
	touch $@

# The stamp files make re-runs instant while still reinstalling when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml $(DOCS_ASSETS)/.installed | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(DOCS_ASSETS)/.installed | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

# Debian packages the tests talk to as real peers (Mosquitto broker, socat for serial ptys,
# Chromium for the browser tests: Playwright drives Debian's build, never one it would
# download; nats-server for the clustered broker: three nodes started by the tests on free
# ports; ffmpeg serving the RTSP and MJPEG camera streams).
system-deps:
	@missing=""; \
	command -v /usr/sbin/mosquitto >/dev/null 2>&1 || missing="$$missing mosquitto"; \
	command -v socat >/dev/null 2>&1 || missing="$$missing socat"; \
	command -v /usr/bin/chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v /usr/bin/chromedriver >/dev/null 2>&1 || missing="$$missing chromium-driver"; \
	command -v /usr/sbin/nats-server >/dev/null 2>&1 || missing="$$missing nats-server"; \
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

# The README's picture of the console, taken on the demo site by the browser test.
screenshot: $(VENV)/.installed-dev system-deps
	CARPARK_UPDATE_SCREENSHOT=1 $(BIN)/python -m pytest -q tests/test_console_browser.py -k screenshot

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var
