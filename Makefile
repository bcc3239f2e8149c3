# Utopia streams. `make demo` and `make test` set everything up themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
BROKER := bash kafka/broker.sh
RUN    := $(BIN)/python -m bytewax.run
# One target a dataflow: `make sold-out` runs dataflows/sold_out.py on the local broker.
DATAFLOWS := customer-stream-count top-customer-artists purchase-event-ticket sold-out most-streamed-artists \
             must-see-venue global-totals suggested-events-genre suggested-events-location

.PHONY: help install demo test kafka-up kafka-down kafka-clean topics generate live live-demo reset schemas diagrams \
        bench clean instructions lint lock $(DATAFLOWS)

help:
	@echo "make demo    generate data, run every dataflow on files, tell what each found (no broker needed)"
	@echo "make test    install, start the local Kafka broker, run all tests, stop the broker"
	@echo "make kafka-up | kafka-down | kafka-clean    the local Apache Kafka broker on localhost:\$$KAFKA_PORT (9092);"
	@echo "                                            none when KAFKA_BOOTSTRAP_SERVERS names another cluster"
	@echo "make topics | generate | live               create topics / load a data set / produce live"
	@echo "make reset   delete the topics, recovery stores and live-demo logs for a clean start (asks; YES=1 does not)"
	@echo "make live-demo   a live feed and every dataflow in the background, \`utopia watch\` in front; Ctrl-C stops all"
	@echo "make <dataflow>   run a dataflow on the configured Kafka, one of: $(DATAFLOWS)"
	@echo "make lint    ruff (lint, format check) and mypy"
	@echo "make lock    refresh constraints.txt, the versions \`make install\` installs, from pyproject.toml"
	@echo "make schemas | diagrams | bench | instructions"

# The versions in constraints.txt (`make lock`), so that a fresh machine installs what CI tested.
$(BIN)/utopia: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test,lint]"
	@touch $@

install: $(BIN)/utopia

demo: install
	$(BIN)/utopia demo

# Starts the broker unless it already runs, and stops it afterwards only if it started it here.
test: install
	@if $(BROKER) status >/dev/null 2>&1; then started=0; else $(BROKER) up || exit 1; started=1; fi; \
	$(BIN)/pytest; status=$$?; \
	if [ $$started = 1 ]; then $(BROKER) down; fi; \
	exit $$status

# Every target that needs Kafka comes through here. broker.sh starts the local broker only when it is the cluster
# in use, on the port the clients use (utopia/local_broker.py decides); for another cluster it starts none.
kafka-up:
	$(BROKER) up

kafka-down:
	$(BROKER) down

kafka-clean:
	$(BROKER) clean

topics: install kafka-up
	$(BIN)/utopia topics create

generate: topics
	$(BIN)/utopia generate --to kafka

live: topics
	$(BIN)/utopia generate --to kafka --live

# Creates the topics itself; the feed's and the dataflows' logs go to .live-demo/<name>.log. FEED=0 when data-demo
# feeds the inputs already.
live-demo: install kafka-up
	$(BIN)/utopia live-demo $(if $(filter 0,$(FEED)),--no-feed)

# A clean start: this project's topics (FEED=0: only its outputs, where data-demo feeds and owns the inputs), the
# recovery stores, whose offsets belong to the deleted topics, and the live demo's logs. YES=1 asks nothing.
reset: install kafka-up
	$(BIN)/utopia topics delete $(if $(filter 1,$(YES)),--yes) $(if $(filter 0,$(FEED)),--outputs-only)
	rm -rf .recovery .live-demo

# `make sold-out RECOVERY=1`: with a Bytewax recovery store in .recovery/<dataflow> (made on first use),
# snapshotted every 10 s; a restart resumes where the last snapshot was (docs/outputs.md#delivery).
$(DATAFLOWS): topics
ifeq ($(RECOVERY),1)
	@test -d .recovery/$(subst -,_,$@) || (mkdir -p .recovery/$(subst -,_,$@) && \
		$(BIN)/python -m bytewax.recovery .recovery/$(subst -,_,$@) 1)
	$(RUN) dataflows.$(subst -,_,$@) -r .recovery/$(subst -,_,$@) -s 10 -b 10
else
	$(RUN) dataflows.$(subst -,_,$@)
endif

schemas: install
	$(BIN)/python -m utopia.tools.schemas

diagrams: install
	$(BIN)/python -m utopia.tools.diagrams

clean:
	rm -rf demo-data demo-out out .pytest_cache .hypothesis

# Throughput, memory and CPU per record; what exactly once costs beside at least once (CPU, latency); what a
# recovery store costs, at 100k and 400k customers; what UTOPIA_ORDER=global costs beside partition on 2 processes
# (CPU, memory, latency). The first rewrites docs/benchmarks.md but the others' sections, which each of them
# replaces. Last, docs/sizing.md's tables are worked out from them.
bench: install kafka-up
	$(BIN)/python -m utopia.tools.bench
	$(BIN)/python -m utopia.tools.delivery_bench
	$(BIN)/python -m utopia.tools.recovery_bench
	$(BIN)/python -m utopia.tools.recovery_bench --customers 400000
	$(BIN)/python -m utopia.tools.order_bench
	$(BIN)/python -m utopia.tools.sizing

# Instructions per record under valgrind: the same on every run, unlike times on a shared host.
instructions: install
	$(BIN)/python -m utopia.tools.instructions

# The newest versions pyproject.toml allows, resolved in a throwaway venv and written to constraints.txt; then
# `make install` installs them here (commit the file: CI and fresh clones install the same).
lock:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(PYTHON) -m venv "$$tmp/venv" && \
	"$$tmp/venv/bin/pip" install --quiet --upgrade pip && \
	"$$tmp/venv/bin/pip" install --quiet -e ".[test,lint]" && \
	{ echo "# Made by \`make lock\` from pyproject.toml ($$("$$tmp/venv/bin/python" -V)); \`make install\` installs these."; \
	  "$$tmp/venv/bin/pip" freeze --exclude-editable; } > "$$tmp/constraints.txt" && \
	mv "$$tmp/constraints.txt" constraints.txt
	@echo "wrote constraints.txt; \`make install\` now installs it"

# ruff's lint and format check over the code and tests, mypy over utopia/ and dataflows/ (settings in pyproject.toml).
lint: install
	$(BIN)/ruff check utopia dataflows tests
	$(BIN)/ruff format --check utopia dataflows tests
	$(BIN)/mypy
