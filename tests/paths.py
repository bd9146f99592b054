"""Where the tests find the checkout and the shared real data (read in place, never copied into the repository)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
GREEN_FILE = SHARED_DATA / "green_tripdata_2020-10.csv.gz"
ZONE_LOOKUP = SHARED_DATA / "taxi_zone_lookup.csv"
