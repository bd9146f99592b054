"""The web console in a real headless browser (Debian's Chromium driven by Selenium): the page shows the running
stack's topics, decodes a topic's Avro messages through the registry, lists the Spark queries from their progress,
its chart of rides per window and vendor follows a job on the cluster as rides arrive (read from the results
database the job writes to), and its results view runs a named query. A screenshot of the page is kept in
artifacts/."""

from __future__ import annotations

import shutil

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.jobs.cluster import produce_generated, start_job
from tests.jobs.results_tables import table_rows
from tests.paths import REPO_ROOT
from tests.waiting import wait_for

pytestmark = pytest.mark.stack

ARTIFACTS = REPO_ROOT / "artifacts"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# Each vendor trace of the chart (window starts, rides), as the browser has drawn it.
CHART_TOTALS = "const g = document.getElementById('vendor-chart'); return (g.data || []).map(t => [t.x, t.y]);"


@pytest.fixture
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail(
            "Debian's chromium and chromium-driver are needed (apt-get install chromium chromium-driver; "
            ".ci/run installs them)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,2400",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _text(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def _chart(driver) -> dict[tuple[str, str], int]:
    """(trace index, window start) -> rides as drawn."""
    return {
        (str(i), x): y
        for i, (xs, ys) in enumerate(driver.execute_script(CHART_TOTALS))
        for x, y in zip(xs, ys, strict=False)
    }


def test_console_shows_the_stack_and_its_chart_follows_new_rides(
    local_stack, browser, topic_factory, tmp_path, results_schema
):
    rides_topic, counts_topic = topic_factory(prefix="console_rides"), topic_factory(prefix="console_counts")
    browser.get(f"{local_stack.console.url}/?results_schema={results_schema}")
    assert browser.title == "NYC taxi pipeline console"
    topics = wait_for(
        lambda: rides_topic in _text(browser, "topics-table") and _text(browser, "topics-table"), "the stack's topics"
    )
    for declared in ("rides_green", "rides_dead_letter", "vendor_counts_windowed"):
        assert declared in topics

    job = start_job(
        local_stack,
        "vendor_counts",
        tmp_path / "checkpoints",
        "--input-topics",
        rides_topic,
        "--output-topic",
        counts_topic,
        "--trigger",
        "2 seconds",
        "--results-schema",
        results_schema,
        sinks="kafka,postgres",
    )
    try:
        produce_generated(rides_topic, 5, 300)
        first = wait_for(lambda: sum(_chart(browser).values()) > 0 and _chart(browser), "the first windows", 180)
        produce_generated(rides_topic, 6, 300)
        second = wait_for(
            lambda: sum(_chart(browser).values()) > sum(first.values()) and _chart(browser),
            "the chart grow with the second rides",
            180,
        )

        # What the chart draws is what the job wrote: the count of each tumbling window and vendor in its table.
        written: dict[str, int] = {}
        for row in table_rows(
            local_stack, results_schema, "SELECT * FROM vendor_counts WHERE window_kind = 'tumbling'"
        ):
            start = row["window_start"].isoformat()
            written[start] = written.get(start, 0) + row["rides"]
        drawn = {}
        for (_, window), rides in wait_for(lambda: _settled(browser, written), "the chart settle", 120).items():
            drawn[window] = drawn.get(window, 0) + rides
        assert drawn == {window: written[window] for window in drawn}
        assert sum(second.values()) > sum(first.values())

        queries = wait_for(
            lambda: "vendor_counts_tumbling" in _text(browser, "queries-table") and _text(browser, "queries-table"),
            "the job's queries",
            120,
        )
        assert "vendor_counts_sliding" in queries and ("running" in queries or "idle" in queries)
    finally:
        job.terminate()
        job.wait(60)

    # The message browser decodes the producer's Avro through the registry.
    browser.find_element(By.XPATH, f"//table[@id='topics-table']//td[text()='{rides_topic}']").click()
    messages = wait_for(
        lambda: "ride_id" in _text(browser, "messages-table") and _text(browser, "messages-table"),
        "the topic's messages decoded",
    )
    assert '"ride_type":' in messages and "undecodable" not in messages
    assert f"{rides_topic}-value" in wait_for(lambda: _text(browser, "subjects-table"), "the schema subjects")

    # The results view runs a named query over the results database, which the job filled.
    Select(browser.find_element(By.ID, "results-query")).select_by_value("vendor_share")
    browser.find_element(By.CSS_SELECTOR, "#results-form button").click()
    shares = wait_for(
        lambda: "share_pct" in _text(browser, "results-table") and _text(browser, "results-table"), "the query's rows"
    )
    assert len(shares.splitlines()) > 1

    # The operations panel: the alerts Prometheus has active (or says none is), and links to the web UIs.
    assert wait_for(lambda: _text(browser, "alerts-table"), "the alerts table")
    assert "Spark master" in wait_for(lambda: _text(browser, "web-uis"), "the web UIs' links")

    ARTIFACTS.mkdir(exist_ok=True)
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(ARTIFACTS / "web-console.png"))
    assert (ARTIFACTS / "web-console.png").stat().st_size > 10_000


def _settled(browser, written: dict) -> dict | None:
    """The chart once every window it draws holds the count the table holds (the page polls every 2 s)."""
    chart = _chart(browser)
    per_window = {}
    for (_, window), rides in chart.items():
        per_window[window] = per_window.get(window, 0) + rides
    return chart if per_window and all(written.get(w) == r for w, r in per_window.items()) else None
