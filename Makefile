# NYC taxi streaming pipeline. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

include conf/versions.env

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK_HOME ?= $(CURDIR)/.stack
LIB := $(STACK_HOME)/lib
MVN := mvn --batch-mode --quiet
MVN_PROPS := -Dkafka.version=$(KAFKA_VERSION) -Dspark.version=$(SPARK_VERSION) \
	-Dscala.binary.version=$(SCALA_BINARY_VERSION) -Dapicurio.version=$(APICURIO_VERSION) \
	-Dlog4j.version=$(LOG4J_VERSION) -Dslf4j.version=$(SLF4J_VERSION)
# (JMX_EXPORTER_VERSION, from conf/versions.env, names the Prometheus JMX exporter agent copied on its own below.)
# What pyspark's own jars already hold; copying these too would put two versions on Spark's classpath.
SPARK_PROVIDED := -DexcludeGroupIds=org.apache.hadoop,org.scala-lang,org.scala-lang.modules,org.slf4j,org.xerial.snappy,at.yawk.lz4,com.google.code.findbugs,org.tukaani \
	-DexcludeArtifactIds=spark-tags_$(SCALA_BINARY_VERSION)
STACK := STACK_HOME=$(STACK_HOME) $(PY) -m stack

.PHONY: help venv jars package lint up down status logs clean topics connectors stream data produce consume consumer-groups replay-dead-letters submit run sql query psql test test-unit

help: ## this list
	@grep -hE '^[a-z-]+:.*## ' Makefile | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## the virtual environment: the project installed for work (-e .[dev]), pinned by constraints.txt

$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

package: venv ## the job package that spark-submit ships to the executors (submit rebuilds it when the code changed)
	@$(STACK) package

lint: venv ## ruff (lint and format check) and mypy, as CI runs them
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

jars: $(LIB)/kafka/.resolved $(LIB)/kafka-connect/.resolved $(LIB)/spark-connectors/.resolved $(LIB)/apicurio/.resolved $(LIB)/jmx-exporter/.resolved ## resolve the JVM artifacts from Maven Central (cached)

$(LIB)/kafka/.resolved: conf/versions.env stack/jvm/kafka.pom.xml
	@command -v mvn >/dev/null || { echo "Maven (mvn) is needed to resolve the JVM artifacts: apt-get install maven"; exit 1; }
	rm -rf $(LIB)/kafka
	$(MVN) -f stack/jvm/kafka.pom.xml $(MVN_PROPS) dependency:copy-dependencies -DoutputDirectory=$(LIB)/kafka
	touch $@

$(LIB)/kafka-connect/.resolved: conf/versions.env stack/jvm/kafka-connect.pom.xml
	rm -rf $(LIB)/kafka-connect
	$(MVN) -f stack/jvm/kafka-connect.pom.xml $(MVN_PROPS) dependency:copy-dependencies -DoutputDirectory=$(LIB)/kafka-connect
	touch $@

$(LIB)/spark-connectors/.resolved: conf/versions.env stack/jvm/spark-connectors.pom.xml
	rm -rf $(LIB)/spark-connectors
	$(MVN) -f stack/jvm/spark-connectors.pom.xml $(MVN_PROPS) dependency:copy-dependencies \
		-DoutputDirectory=$(LIB)/spark-connectors $(SPARK_PROVIDED)
	touch $@

# The Prometheus JMX exporter, a Java agent jar of its own (shaded: no dependencies to resolve).
$(LIB)/jmx-exporter/.resolved: conf/versions.env
	rm -rf $(LIB)/jmx-exporter
	$(MVN) dependency:copy -Dartifact=io.prometheus.jmx:jmx_prometheus_javaagent:$(JMX_EXPORTER_VERSION) \
		-DoutputDirectory=$(LIB)/jmx-exporter -Dmdep.stripVersion=true
	touch $@

# Apicurio's runnable distribution (a Quarkus fast-jar); its parent pom is not on Maven Central, so the archive
# is copied on its own rather than resolved as a dependency.
$(LIB)/apicurio/.resolved: conf/versions.env
	rm -rf $(LIB)/apicurio $(LIB)/apicurio-download
	$(MVN) dependency:copy -Dartifact=io.apicurio:apicurio-registry-app:$(APICURIO_VERSION):tar.gz:all \
		-DoutputDirectory=$(LIB)/apicurio-download
	mkdir -p $(LIB)/apicurio
	tar -xzf $(LIB)/apicurio-download/apicurio-registry-app-$(APICURIO_VERSION)-all.tar.gz -C $(LIB)/apicurio
	rm -rf $(LIB)/apicurio-download
	touch $@

up: venv jars ## start Kafka, the schema registry and Spark (BROKERS=3, WORKERS=2 to scale)
	@$(STACK) up

down: venv ## stop what `make up` started; data is kept
	@$(STACK) down

status: venv ## each service with its address, web UI, health and memory
	@$(STACK) status

logs: venv ## a service's log: make logs SERVICE=kafka-1 (FOLLOW=1 to follow)
	@$(STACK) logs $(SERVICE) $(if $(FOLLOW),--follow)

clean: venv ## remove the stack's data and logs (after make down)
	@$(STACK) clean

topics: venv ## apply conf/topics.yaml and list topics
	@$(STACK) topics --apply

connectors: venv ## create or update the Kafka Connect connectors of conf/connectors.yaml (CONNECT=1 make up first)
	@$(STACK) connectors

stream: venv jars ## run the pipeline and watch results (DURATION=60 stops by itself, SPEED=600 replay speed)
	@$(STACK) stream $(if $(DURATION),--duration $(DURATION)) $(if $(SPEED),--speed $(SPEED)) $(STREAM_ARGS)

data: venv ## download real TLC trip files and the zone lookup into data/ (DATA_ARGS="--kind yellow --month 2024-02")
	$(PY) -m producers.download $(DATA_ARGS)

produce: venv ## produce rides: make produce ARGS="--source generator --limit 1000" (see --help)
	$(PY) -m producers.produce $(ARGS)

consume: venv ## print messages: make consume ARGS="rides_green --max 5"
	$(PY) -m producers.consume $(ARGS)

consumer-groups: venv jars ## Kafka's own kafka-consumer-groups: make consumer-groups ARGS="--describe --group spark-job-vendor_counts_tumbling"
	@$(STACK) consumer-groups $(ARGS)

replay-dead-letters: venv ## re-send dead letters to their topics: make replay-dead-letters ARGS="--reason ... --dry-run"
	$(PY) -m cluster.dead_letter_replay $(ARGS)

submit: venv jars ## spark-submit a job to the cluster: make submit JOB=vendor_counts ARGS=...
	@test -n "$(JOB)" || { echo "usage: make submit JOB=<name of a module in jobs/> [ARGS=...]"; exit 2; }
	$(STACK) submit $(JOB) $(ARGS)

run: venv jars ## run a job on the stack's job server, a warm Spark application: make run JOB=vendor_counts ARGS=...
	@test -n "$(JOB)" || { echo "usage: make run JOB=<name of a module in jobs/> [ARGS=...]"; exit 2; }
	$(STACK) run $(JOB) $(ARGS)

sql: venv jars ## run a SQL file over the streams on the cluster: make sql QUERY=queries/rides_per_zone_15m.sql
	@test -n "$(QUERY)" || { echo "usage: make sql QUERY=<file.sql> [ARGS=...]  (examples in queries/)"; exit 2; }
	$(STACK) submit stream_sql $(QUERY) $(ARGS)

query: venv ## a pull query on the results database: make query SQL="SELECT ..." or NAME=busiest_zones [ARGS=--param hours=3]
	@test -n "$(SQL)$(NAME)" || { echo 'usage: make query SQL="SELECT ..." | make query NAME=<named query> (make query NAME=list)'; exit 2; }
	@if [ "$(NAME)" = list ]; then STACK_HOME=$(STACK_HOME) $(PY) -m results list; \
	elif [ -n "$(NAME)" ]; then STACK_HOME=$(STACK_HOME) $(PY) -m results run $(NAME) $(ARGS); \
	else STACK_HOME=$(STACK_HOME) $(PY) -m results query "$$SQL"; fi

psql: venv ## an interactive psql session on the results database, as its read-only role
	@STACK_HOME=$(STACK_HOME) $(PY) -m results psql

test: venv jars ## the test suite; starts the services it needs and stops them afterwards
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: venv jars ## the tests that need no running service (transformations, parsing, settings): the quick loop
	$(PY) -m pytest -m "not stack" $(PYTEST_ARGS)
