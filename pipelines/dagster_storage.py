"""The Dagster instance's storage: embedded SQLite by default, PostgreSQL for a team.

    python -m pipelines.dagster_storage DAGSTER_HOME [--postgres]

writes ``DAGSTER_HOME/dagster.yaml``. With ``--postgres`` runs, event logs and schedules go to
the PostgreSQL database named by the environment (read by Dagster when the instance loads, so
the file holds no secret): ``DAGSTER_PG_HOST``, ``DAGSTER_PG_PORT``, ``DAGSTER_PG_USER``,
``DAGSTER_PG_PASSWORD``, ``DAGSTER_PG_DB``. Several users, the daemon and concurrent runs can
then share one instance, which embedded SQLite does not allow.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

PG_ENV = {
    "hostname": "DAGSTER_PG_HOST",
    "port": "DAGSTER_PG_PORT",
    "username": "DAGSTER_PG_USER",
    "password": "DAGSTER_PG_PASSWORD",
    "db_name": "DAGSTER_PG_DB",
}


def instance_config(postgres: bool) -> dict[str, Any]:
    """The dagster.yaml settings: telemetry off, and with ``postgres`` the dagster-postgres
    storage whose connection settings are all ``env:`` references."""
    config: dict[str, Any] = {"telemetry": {"enabled": False}}
    if postgres:
        database: dict[str, Any] = {key: {"env": var} for key, var in PG_ENV.items()}
        # SQLAlchemy 2.1 maps a bare "postgresql" URL to psycopg 3, which dagster-postgres does
        # not install; it depends on psycopg2, so name that driver.
        database["scheme"] = "postgresql+psycopg2"
        config["storage"] = {"postgres": {"postgres_db": database}}
    return config


def write_dagster_yaml(dagster_home: Path, postgres: bool) -> Path:
    """Write ``dagster_home/dagster.yaml`` (the folder is made if missing); returns its path."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    path = dagster_home / "dagster.yaml"
    path.write_text(yaml.safe_dump(instance_config(postgres), sort_keys=False), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dagster_home", type=Path, help="the DAGSTER_HOME folder")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="store runs and events in PostgreSQL (connection from DAGSTER_PG_* at load time)",
    )
    args = parser.parse_args(argv)
    path = write_dagster_yaml(args.dagster_home.resolve(), args.postgres)
    print(f"wrote {path} ({'PostgreSQL' if args.postgres else 'embedded SQLite'} storage)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
