"""`make data`'s real download code against a local HTTP server that serves the files of ../shared/data."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from producers import download
from tests.conftest import GREEN_FILE, ZONE_LOOKUP


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass  # no request lines in the test's output


@pytest.fixture()
def tlc_mirror(tmp_path):
    """A web root laid out like the TLC's: trip-data/<file> and misc/taxi_zone_lookup.csv."""
    root = tmp_path / "mirror"
    (root / "trip-data").mkdir(parents=True)
    (root / "misc").mkdir()
    (root / "trip-data" / GREEN_FILE.name).symlink_to(GREEN_FILE)
    (root / "misc" / ZONE_LOOKUP.name).symlink_to(ZONE_LOOKUP)
    (root / "trip-data" / "green_tripdata_2020-09.csv.gz").write_bytes(b"this is not gzip")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _run(base_url, target, *extra):
    return download.main(["--base-url", base_url, "--target", str(target), "--extension", "csv.gz", "--quiet", *extra])


def test_download_fetches_checks_and_keeps_good_files(tlc_mirror, tmp_path, capsys):
    target = tmp_path / "data"
    assert _run(tlc_mirror, target, "--kind", "green", "--month", "2020-10") == 0
    out = capsys.readouterr().out
    assert "downloaded green_tripdata_2020-10.csv.gz: 95,120 rows, 95,120 events (green)" in out
    assert "downloaded taxi_zone_lookup.csv: 265 zones" in out
    assert (target / GREEN_FILE.name).read_bytes() == GREEN_FILE.read_bytes()
    assert sorted(p.name for p in target.iterdir()) == [GREEN_FILE.name, "taxi_zone_lookup.csv"]

    assert _run(tlc_mirror, target, "--kind", "green", "--month", "2020-10") == 0
    assert "kept green_tripdata_2020-10.csv.gz" in capsys.readouterr().out


def test_a_month_that_is_not_published_is_named_in_the_error(tlc_mirror, tmp_path, capsys):
    assert _run(tlc_mirror, tmp_path / "data", "--kind", "green", "--month", "2020-11") == 1
    assert "green_tripdata_2020-11.csv.gz does not exist (HTTP 404)" in capsys.readouterr().err


def test_a_corrupt_download_fails_its_check_and_leaves_no_file(tlc_mirror, tmp_path, capsys):
    target = tmp_path / "data"
    assert _run(tlc_mirror, target, "--kind", "green", "--month", "2020-09") == 1
    assert "green_tripdata_2020-09.csv.gz: not a readable green trip file" in capsys.readouterr().err
    assert not list(target.iterdir())


def test_an_unreachable_server_is_named(tmp_path, capsys):
    assert _run("http://127.0.0.1:1", tmp_path / "data", "--month", "2020-10") == 1
    assert "cannot download http://127.0.0.1:1/trip-data/green_tripdata_2020-10.csv.gz" in capsys.readouterr().err


def test_a_malformed_month_is_refused():
    with pytest.raises(SystemExit):
        download.main(["--month", "2020-13"])
