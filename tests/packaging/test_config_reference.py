"""config/README.md is generated from the settings model and must not drift from it."""

from __future__ import annotations

from pathlib import Path

from cleaner import reference
from cleaner.settings import Settings, known_variables
from tests.packaging._tools import ROOT

README = ROOT / "config/README.md"


def test_the_committed_reference_matches_the_code() -> None:
    """Regenerate with: python -m cleaner.reference --write config/README.md."""
    assert README.read_text(encoding="utf-8") == reference.render()


def test_the_check_mode_reports_drift(tmp_path: Path) -> None:
    """--check exits 0 on the committed file and 1 on a stale one."""
    assert reference.main(["--check", str(README)]) == 0
    stale = tmp_path / "README.md"
    stale.write_text(reference.render().replace("30d", "31d"), encoding="utf-8")
    assert reference.main(["--check", str(stale)]) == 1


def test_every_variable_has_a_meaning_and_an_example() -> None:
    """Each field carries description= and examples=, so each row is complete."""
    assert reference.missing_descriptions() == []
    assert {row[0] for row in reference.rows()} == known_variables()
    assert all(field.description for field in Settings.model_fields.values())


def test_defaults_are_written_the_way_an_operator_writes_them() -> None:
    """Durations read 5m and 30s, not 0:05:00; required ones say so."""
    rows = {row[0]: row for row in reference.rows()}
    assert rows["CLEANER_WAIT_TIMEOUT"][2] == "`5m`"
    assert rows["CLEANER_REQUEST_TIMEOUT"][2] == "`30s`"
    assert rows["CLEANER_RETENTION"][2] == "*required*"
    assert rows["CLEANER_DRY_RUN"][1] == "boolean"
