"""Print the requirements of pyproject.toml for the image: the runtime's and the named extras', one per line,
without pyspark (the image's Spark is /opt/spark/python). Used by spark/Dockerfile.

  python3 spark/requirements_of.py pyproject.toml [--runtime] [extra ...]
"""

import sys
import tomllib


def main(argv: list[str]) -> None:
    path, *wanted = argv
    with open(path, "rb") as handle:
        project = tomllib.load(handle)["project"]
    requirements = list(project["dependencies"]) if "--runtime" in wanted else []
    for extra in (name for name in wanted if name != "--runtime"):
        requirements += project["optional-dependencies"][extra]
    print("\n".join(r for r in requirements if not r.lower().startswith("pyspark")))


if __name__ == "__main__":
    main(sys.argv[1:])
