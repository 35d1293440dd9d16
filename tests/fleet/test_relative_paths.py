"""Relative paths in SERVICECAST_DATABASE_URL and SERVICECAST_ARCHIVE_URL are read against SERVICECAST_HOME
(else the directory the process started in) once, at settings load: every process given the same home uses
the same files wherever it is started, and the paths it uses are the ones it shows."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fleet.settings import Settings

PYTHON_BIN = os.path.dirname(sys.executable)


def test_relative_paths_are_read_against_the_home(tmp_path) -> None:
    settings = Settings(home=tmp_path, database_url="sqlite:///data/fleet.db", archive_url="data/archive")
    assert settings.database_url == f"sqlite:///{tmp_path}/data/fleet.db"
    assert settings.archive_url == str(tmp_path / "data" / "archive")


def test_without_a_home_the_defaults_are_fixed_to_the_start_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.database_url == f"sqlite:///{tmp_path}/var/servicecast.db"
    assert settings.archive_url == str(tmp_path / "var" / "archive")
    assert "database_url" not in settings.model_fields_set  # the demo still knows its database is its own


@pytest.mark.parametrize(
    ("database_url", "archive_url"),
    [
        ("sqlite:////srv/servicecast/fleet.db", "/srv/servicecast/archive"),
        ("postgresql+psycopg://app@db.example:5432/servicecast", "ftp://files.example/prefix"),
        ("sqlite:////srv/fleet.db", "memory://archive"),
    ],
)
def test_absolute_paths_and_other_urls_stay_as_written(tmp_path, database_url, archive_url) -> None:
    settings = Settings(home=tmp_path, database_url=database_url, archive_url=archive_url)
    assert (settings.database_url, settings.archive_url) == (database_url, archive_url)


def test_a_command_started_in_another_directory_uses_the_homes_database(tmp_path) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    env = {
        "PATH": f"{PYTHON_BIN}:{os.environ['PATH']}",
        "SERVICECAST_HOME": str(home),
        "SERVICECAST_DATABASE_URL": "sqlite:///fleet.db",
    }
    shown = subprocess.run(
        ["servicecast", "check-config"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert f"SERVICECAST_DATABASE_URL=sqlite:///{home}/fleet.db" in shown.stdout.splitlines()


def test_a_home_that_is_not_an_absolute_folder_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="SERVICECAST_HOME|absolute"):
        Settings(home="relative/home")
