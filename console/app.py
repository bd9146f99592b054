"""The console's HTTP API and page (FastAPI). Every panel polls one JSON endpoint; nothing is cached but the
live feed of the progress topic (console/feeds.py). Results, charts included, are read from the results
database, as its read-only role."""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import plotly
from confluent_kafka import KafkaException
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry, make_asgi_app
from starlette.middleware.trustedhost import TrustedHostMiddleware

from cluster.clients import registry_client
from cluster.groups import group_lags
from console.charts import TOP_ZONES_SQL, VENDOR_WINDOWS_SQL, query_rows, top_zones, vendor_windows
from console.feeds import TopicFeed
from console.login import BasicLogin, web_login
from console.metrics import PipelineCollector
from console.operations import CHARTS, OperationsView, PrometheusUnavailableError
from console.views import (
    KafkaView,
    RegistryView,
    connectors,
    kafka_error,
    spark_applications,
)
from jobs.catalog import JOBS
from pipeline_config.credentials import client_auth
from pipeline_config.settings import SettingsError, StackSettings
from results.database import ResultsDatabaseError, ResultsDatabaseUnreachableError, address
from results.named_queries import load_queries
from results.pull import PullResult, QueryRefusedError, pull
from rides.messages import MessageDecoder
from rides.serialization import RegistryUnavailableError

STATIC = Path(__file__).parent / "static"
# The results schema a chart or a named query reads (a test or a reprocessing run writes to one of its own).
SCHEMA_QUERY = Query("results", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def progress_topic() -> str:
    """The topic the queries panel follows, from the jobs' declarations and conf/jobs.yaml (the declarations load
    no Spark code: the console stays at a third of the memory it would need with pyspark)."""
    topic = JOBS["vendor_counts"].load_settings().progress_topic
    if topic is None:
        raise SettingsError(
            "conf/jobs.yaml: progress_topic is null; the console's queries panel follows it, name a topic"
        )
    return topic


def _json_cell(value: object) -> object:
    """A database value as JSON: times in ISO 8601, numerics as text (exact), the rest as they are."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def create_app(settings: StackSettings, env: Mapping[str, str] = os.environ) -> FastAPI:
    # On the secured stack the console logs in to Kafka as its own read-only role (conf/security.yaml `console`,
    # the login make up hands it in KAFKA_CREDENTIALS_FILE), never as the admin.
    auth = client_auth(env)
    followed = progress_topic()
    feeds: list[TopicFeed] = []
    kafka = KafkaView(settings, auth)
    registry = RegistryView(settings.registry.url)
    operations = OperationsView(settings)
    decoder = MessageDecoder("auto", registry_client(settings.registry.url))
    login = web_login(settings) if settings.kafka.secure else None

    @asynccontextmanager
    async def lifespan(_app):
        feeds.append(TopicFeed(settings.kafka.bootstrap_servers, auth, followed))  # queries show up as they report
        yield
        feeds.pop().close()

    app = FastAPI(title="NYC taxi pipeline console", lifespan=lifespan)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    metrics = CollectorRegistry()
    metrics.register(
        PipelineCollector(
            lambda: group_lags(kafka.admin, kafka.bootstrap, kafka.auth, in_time=False),
            lambda: feeds[0].latest() if feeds else [],
        )
    )
    app.mount("/metrics", make_asgi_app(metrics))
    if login is not None:
        app.add_middleware(BasicLogin, login=login)
    # Outermost: a request whose Host is not the console's own name (a DNS-rebinding page) is refused first.
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(settings.console.allowed_hosts))

    def read_results(statement: str, params: Mapping[str, object], schema: str) -> PullResult:
        """A statement over the results database, as its read-only role, bounded in rows and time."""
        return pull(
            settings.postgres.reader_url,
            statement,
            params,
            max_rows=settings.console.max_result_rows,
            timeout_s=settings.console.result_timeout_s,
            schema=schema,
        )

    def chart_rows(statement: str, params: Mapping[str, object], schema: str) -> tuple[list[dict], str | None]:
        """A chart's rows, or none with the reason while its table does not exist yet (no job wrote it)."""
        try:
            result = read_results(statement, params, schema)
        except QueryRefusedError as exc:
            return [], str(exc).splitlines()[0]
        return [
            {name: _json_cell(value) for name, value in zip(result.columns, row, strict=True)} for row in result.rows
        ], None

    @app.exception_handler(KafkaException)
    async def _kafka_failed(_request: Request, exc: KafkaException):
        return JSONResponse({"detail": f"Kafka: {kafka_error(exc)}"}, status_code=502)

    @app.exception_handler(SchemaRegistryError)
    async def _registry_refused(_request: Request, exc: SchemaRegistryError):
        status = exc.http_status_code if 400 <= (exc.http_status_code or 0) < 500 else 502
        return JSONResponse({"detail": f"schema registry: {exc.error_message}"}, status_code=status)

    @app.exception_handler(PrometheusUnavailableError)
    async def _prometheus_failed(_request: Request, exc: PrometheusUnavailableError):
        return JSONResponse({"detail": str(exc)}, status_code=502)

    @app.exception_handler(RegistryUnavailableError)
    async def _registry_failed(_request: Request, exc: RegistryUnavailableError):
        return JSONResponse({"detail": str(exc)}, status_code=502)

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html")

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js():
        return FileResponse(PLOTLY_JS, media_type="text/javascript")

    @app.get("/api/health")
    def health():
        return {"ok": True}

    @app.get("/api/overview")
    def overview():
        return {
            "bootstrap_servers": settings.kafka.bootstrap_servers,
            "registry": settings.registry.url,
            "spark_master": settings.spark.master_url,
            "spark_ui": f"http://127.0.0.1:{settings.spark.master_ui_port}",
            "secure": settings.kafka.secure,
            "progress_topic": followed,
            "results_database": address(settings.postgres.reader_url),
        }

    @app.get("/api/topics")
    def list_topics():
        return kafka.topics()

    @app.get("/api/groups")
    def list_groups():
        return kafka.groups()

    @app.get("/api/topics/{topic}/messages")
    def browse(topic: str, limit: int = Query(20, ge=1, le=500)):
        if topic not in kafka.admin.list_topics(timeout=10).topics:
            raise HTTPException(404, f"no topic {topic!r}")
        return kafka.messages(topic, limit, decoder)

    @app.get("/api/subjects")
    def subjects():
        return registry.subjects()

    @app.get("/api/subjects/{subject}/versions/{version}")
    def schema(subject: str, version: int):
        return {"subject": subject, "version": version, "schema": registry.schema(subject, version)}

    @app.get("/api/subjects/{subject}/diff")
    def diff(subject: str, old: int, new: int):
        return {"subject": subject, "old": old, "new": new, "diff": registry.diff(subject, old, new)}

    @app.get("/api/queries")
    def queries():
        feed = feeds[0]
        return {"topic": feed.topic, "error": feed.error, "queries": query_rows(feed.latest())}

    @app.get("/api/alerts")
    def alerts():
        """The alerts Prometheus has active (conf/prometheus/alerts.yml), firing first."""
        return operations.alerts()

    @app.get("/api/operations/charts/{name}")
    def operations_chart(name: str, minutes: int = Query(15, ge=1, le=1440)):
        """Throughput, job lag or batch duration over the last minutes, from Prometheus."""
        if name not in CHARTS:
            raise HTTPException(404, f"no chart {name!r}; known: {', '.join(CHARTS)}")
        return operations.chart(name, minutes)

    @app.get("/api/web-uis")
    def web_uis():
        return operations.web_uis()

    @app.get("/api/spark")
    def spark():
        return spark_applications(settings)

    @app.get("/api/connectors")
    def list_connectors():
        return connectors(settings)

    @app.get("/api/results/queries")
    def result_queries():
        """The named pull queries of conf/results.yaml with their parameters and defaults."""
        return [
            {"name": query.name, "description": query.description, "params": query.params}
            for query in load_queries().values()
        ]

    @app.get("/api/results/queries/{name}")
    def run_result_query(name: str, request: Request, schema: str = SCHEMA_QUERY):
        """A named query over the results database, as its read-only role, bounded in rows and time; its
        parameters from the query string (a value of the wrong type or an unknown name: 400), `schema` aside."""
        queries = load_queries()
        if name not in queries:
            raise HTTPException(404, f"no query named {name!r}; known: {', '.join(queries)}")
        query = queries[name]
        try:
            bound = query.bind({key: value for key, value in request.query_params.items() if key != "schema"})
        except SettingsError as exc:
            raise HTTPException(400, str(exc)) from None
        result = read_results(query.sql, bound, schema)
        return {
            "name": name,
            "params": bound,
            "columns": result.columns,
            "rows": [[_json_cell(value) for value in row] for row in result.rows],
            "truncated": result.truncated,
        }

    @app.exception_handler(ResultsDatabaseUnreachableError)
    async def _results_unreachable(_request: Request, exc: ResultsDatabaseUnreachableError):
        return JSONResponse({"detail": str(exc)}, status_code=502)

    @app.exception_handler(ResultsDatabaseError)
    async def _results_failed(_request: Request, exc: ResultsDatabaseError):
        return JSONResponse({"detail": str(exc)}, status_code=502)

    @app.exception_handler(QueryRefusedError)
    async def _query_refused(_request: Request, exc: QueryRefusedError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.get("/api/charts/vendor-counts")
    def vendor_counts_chart(kind: str = "tumbling", windows: int = Query(24, ge=1, le=500), schema: str = SCHEMA_QUERY):
        """Rides per window and vendor over the latest windows of one kind (the vendor_counts table)."""
        rows, error = chart_rows(VENDOR_WINDOWS_SQL, {"kind": kind, "windows": windows}, schema)
        return {"table": f"{schema}.vendor_counts", "error": error, **vendor_windows(rows)}

    @app.get("/api/charts/top-zones")
    def top_zones_chart(schema: str = SCHEMA_QUERY):
        """The top pickup zones of the latest window (the zone_top table)."""
        rows, error = chart_rows(TOP_ZONES_SQL, {}, schema)
        return {"table": f"{schema}.zone_top", "error": error, **top_zones(rows)}

    return app
