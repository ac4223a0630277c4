"""The policy file: defaults equal the seed, overrides merge, typos and bad values fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoring.policy import load_policy
from trajectory.contract import ITEM_CODES
from trajectory.errors import PolicyError


def test_defaults_equal_the_seed() -> None:
    p = load_policy()
    maxima = {code: p.items[code].max_score for code in ITEM_CODES}
    assert sum(maxima.values()) == pytest.approx(100.0)
    assert maxima["2.5"] == 6.0 and maxima["6.1a"] == 15.0 and maxima["6.1b"] == 10.0
    assert p.patrol.day_required_s("community") == 3 * 3600
    assert p.patrol.day_required_s("village") == 2 * 3600
    assert p.patrol.week_required_s("community") == 18 * 3600
    assert p.patrol.week_required_s("village") == 12 * 3600
    assert p.patrol.deductions.absent_day == 0.5 and p.patrol.deductions.short_day == 0.2
    assert p.items["6.2"].deduct["false"] == 1.0
    assert p.events.min_valid_events == 80 and p.events.quality_zero_share == 0.30
    assert p.info_collection.min_rate == 0.95
    assert dict(p.events.ranking_bonus) == {}
    assert p.events.category_minimums_deduct is False
    for code in ITEM_CODES:
        assert p.items[code].clause, f"item {code} cites no clause"


def test_override_merges_and_changes_hash(tmp_path: Path) -> None:
    f = tmp_path / "patrol.toml"
    f.write_text(
        'gps_crs = "gcj02"\n[patrol]\nvillage_day_h = 2.5\n[events.ranking_bonus]\n1 = 1.0\n', encoding="utf-8"
    )
    p = load_policy(f)
    assert p.gps_crs == "gcj02"
    assert p.patrol.village_day_h == 2.5
    assert p.patrol.community_day_h == 3.0  # untouched default
    assert dict(p.events.ranking_bonus) == {1: 1.0}
    assert p.hash != load_policy().hash
    assert load_policy(f).hash == p.hash  # stable


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[patrol]\nvilage_day_h = 2\n", "unknown setting 'patrol.vilage_day_h'"),
        ('gps_crs = "utm"\n', "gps_crs was 'utm'"),
        ('timezone = "Mars/Olympus"\n', "not a known IANA time zone"),
        ("[patrol]\nday_km = -1\n", "'patrol.day_km' was -1"),
        ('[patrol.visits]\nkey_person = "fortnight"\n', "visit period 'fortnight'"),
        ("[patrol\n", "not valid TOML"),
    ],
)
def test_bad_policy_names_file_and_key(tmp_path: Path, text: str, needle: str) -> None:
    f = tmp_path / "patrol.toml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        load_policy(f)
    assert needle in str(err.value)
    assert str(f) in str(err.value)
