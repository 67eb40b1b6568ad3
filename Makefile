# Entry points for users, CI and later work. RECSYS_ENV selects conf/<env>.yaml (default: local).
SHELL := /bin/bash
PY := .venv/bin/python
SUBMIT := $(PY) -m recsys.spark.submit
RUN_DATE ?= $(shell date -u +%F)
DATA ?= synthetic
PYTEST_ARGS ?=

.PHONY: help setup up down status cluster-up cluster-down load train maintain rollback stream serve demo test test-unit lint bench bench-speed bench-serving bench-catalogue bench-overlay bench-soak bench-bronze bench-trigger bench-quality bench-sequence bench-cost airflow airflow-down airflow-test lock clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

setup:  ## install everything (apt, venvs, jars); idempotent
	bash docker/local/setup.sh

up: setup  ## start Redis and Kafka (loopback), create topics
	bash docker/local/services.sh up

down:  ## stop Redis, Kafka, Airflow and the local Spark cluster (also one left by a killed test run)
	-bash docker/local/airflow.sh down
	-bash docker/local/cluster.sh clean
	bash docker/local/services.sh down

status:  ## show which local services run
	bash docker/local/services.sh status

cluster-up: setup  ## standalone Spark master + worker on 127.0.0.1:7077; then e.g. RECSYS__SPARK__MASTER=spark://127.0.0.1:7077 make train
	bash docker/local/cluster.sh up

cluster-down:  ## stop the standalone Spark master and worker
	bash docker/local/cluster.sh down

load:  ## backfill history into Delta: generated, ARGS="--source online-retail", or your files (docs/bring-your-own-data.md)
	$(SUBMIT) spark_jobs/load_data.py $(ARGS)

train:  ## batch pipeline via spark-submit: check, tune + train, evaluate, gate + report, publish (FORCE=1 retrains)
	$(SUBMIT) spark_jobs/batch.py all --run-date $(RUN_DATE) $(if $(FORCE),--force)

maintain:  ## Delta OPTIMIZE + VACUUM of every table
	$(SUBMIT) spark_jobs/batch.py maintain

rollback:  ## make an earlier model version current again: make rollback VERSION=2026-11-27.1
	$(PY) spark_jobs/activate_model.py --version $(VERSION)

stream:  ## speed-layer job via spark-submit (runs until stopped)
	$(SUBMIT) spark_jobs/stream.py

serve:  ## the API (granian, api/server.py) on serving.host:serving.port
	$(PY) -m api.server

demo: export RECSYS_DEMO_T0 := $(shell date +%s.%N)
demo: setup  ## the product end to end: DATA=synthetic|retail, batch DAG via Airflow, stream, API; until Ctrl-C (ARGS=--no-keep)
	$(PY) -m recsys.demo.runner --data $(DATA) $(ARGS)

test: up  ## the whole suite on real services (unit, Spark, integration, end-to-end, Airflow)
	RECSYS_ENV=test $(PY) -m pytest $(PYTEST_ARGS)

test-unit:  ## fast unit tests only, no services
	RECSYS_ENV=test $(PY) -m pytest -m unit $(PYTEST_ARGS)

lint:  ## ruff
	.venv/bin/ruff check .

bench: up  ## freshness benchmark: POST event -> changed recommendation at 1,000 background events/s (needs a published model)
	$(PY) bench/freshness.py --samples 100 --background-rate 1000

bench-speed: up  ## speed layer: sustained events/s with every adjustment on, Redis bytes per active user
	$(PY) bench/speed_layer.py --events 1000000

bench-bronze: up  ## bronze micro-batch cost at steady state (wall, CPU-s), with and without the query's offset watermarks
	$(PY) bench/bronze_batch.py

bench-trigger: up  ## micro-batch trigger against Spark's real-time mode: event-to-sink latency
	$(PY) bench/trigger_latency.py --seconds 30

bench-serving: up  ## serving: wrk against the API at 100k and 1M items x 64 with real-time state: p50/p99, req/s, memory, two-stage vs full NDCG, profile
	command -v wrk >/dev/null || (apt-get install -y wrk || sudo apt-get install -y wrk)
	$(PY) bench/serving_load.py --sizes 100000,1000000 --rank 64 --seconds 20

bench-catalogue: up  ## live catalogue: PATCH /v1/items -> every worker, a new item's first views -> its lists (p50/p95)
	$(PY) bench/catalogue.py --samples 20 --workers 2 --items 20000

bench-overlay:  ## live catalogue overlay: one worker's CPU and kept memory per rebuild at 100k and 1M items x 64
	$(PY) bench/live_overlay.py

bench-soak: up  ## soak: 500 req/s for 10 min (80% reads, 20% events) against the API + stream; errors, p99, RSS, Redis, bronze audit
	$(PY) bench/soak.py --rate 500 --seconds 600

bench-quality:  ## offline quality: the served ranking vs its signals, implicit ALS, item-kNN, content, popularity (UCI retail, MovieLens 100k)
	$(PY) bench/quality.py

bench-sequence:  ## next-item model (GRU) vs ALS, item-kNN, recent items' neighbours on UCI retail invoices; training time, inference p99
	$(PY) bench/sequence.py

bench-cost:  ## time and peak memory of train + evaluate, Spark ALS vs implicit, 1M and 10M synthetic events
	$(PY) bench/training_cost.py

airflow: setup  ## Airflow UI (127.0.0.1:services.airflow_port) with the project's DAG
	bash docker/local/airflow.sh up

airflow-down:  ## stop the Airflow UI
	bash docker/local/airflow.sh down

airflow-test:  ## run the batch DAG once with `airflow dags test`
	bash docker/local/airflow.sh test $(RUN_DATE)

lock:  ## re-resolve the pinned lock files after editing requirements
	.venv/bin/uv pip compile -q requirements.txt -p .venv/bin/python -o requirements/lock.txt
	.venv/bin/uv pip compile -q requirements/dev.txt -c requirements/lock.txt -p .venv/bin/python -o requirements/dev-lock.txt
	.venv/bin/uv pip compile -q requirements/airflow.txt -p .venv-airflow/bin/python -o requirements/airflow-lock.txt

clean: down  ## remove local data, logs and checkpoints (keeps venvs and jars)
	rm -rf .local/delta .local/checkpoints .local/test .local/kafka/data .local/redis .local/airflow .local/run
