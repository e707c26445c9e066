"""Business calendars: opening hours, holidays, DST, and open time added or measured."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest

from sla.calendar import ALWAYS_OPEN, Calendar, CalendarError, parse_hours

PARIS = ZoneInfo("Europe/Paris")
OFFICE_HOURS = {"mon-fri": "09:00-18:00", "sat": "10:00-13:00"}
HOUR = 3600.0


@pytest.fixture(scope="module")
def office() -> Calendar:
    return Calendar("paris-office", timezone="Europe/Paris", hours=OFFICE_HOURS, holidays="FR")


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)


def test_one_hour_received_friday_evening_is_due_saturday_morning(office):
    due = office.add_business_time(paris(2026, 11, 20, 17, 30), HOUR)
    assert due == paris(2026, 11, 21, 10, 30)
    assert due.tzinfo is UTC


def test_a_target_ending_at_closing_time_is_due_at_closing_time(office):
    assert office.add_business_time(paris(2026, 11, 20, 17, 0), HOUR) == paris(2026, 11, 20, 18, 0)


def test_labour_day_is_skipped(office):
    # Thursday 30 April 17:30; Friday 1 May is a public holiday in France.
    assert office.add_business_time(paris(2026, 4, 30, 17, 30), HOUR) == paris(2026, 5, 2, 10, 30)


def test_bastille_day_is_skipped(office):
    # Monday 13 July 17:30; Tuesday 14 July is a public holiday.
    assert office.add_business_time(paris(2026, 7, 13, 17, 30), HOUR) == paris(2026, 7, 15, 9, 30)
    assert office.business_seconds_between(paris(2026, 7, 14, 0, 0), paris(2026, 7, 15, 0, 0)) == 0


def test_without_holidays_a_public_holiday_is_a_working_day():
    plain = Calendar("plain", timezone="Europe/Paris", hours=OFFICE_HOURS)
    assert plain.add_business_time(paris(2026, 7, 13, 17, 30), HOUR) == paris(2026, 7, 14, 9, 30)


def test_a_subdivision_adds_its_own_holidays():
    # Good Friday is a holiday in Moselle (57), not in the rest of France.
    moselle = Calendar("metz", timezone="Europe/Paris", hours=OFFICE_HOURS, holidays="FR", subdivision="57")
    good_friday = paris(2026, 4, 3, 12, 0)
    assert not moselle.is_open(good_friday)
    assert Calendar("p", timezone="Europe/Paris", hours=OFFICE_HOURS, holidays="FR").is_open(good_friday)


def test_the_office_reopens_after_the_spring_forward_weekend_at_local_nine(office):
    # Saturday 28 March 2026 12:00 CET; clocks go forward on Sunday 29 March.
    due = office.add_business_time(paris(2026, 3, 28, 12, 0), 4 * HOUR)
    assert due == paris(2026, 3, 30, 12, 0)
    assert due == datetime(2026, 3, 30, 10, 0, tzinfo=UTC)


def test_the_office_reopens_after_the_fall_back_weekend_at_local_nine(office):
    # Saturday 24 October 2026 12:00 CEST; clocks go back on Sunday 25 October.
    due = office.add_business_time(paris(2026, 10, 24, 12, 0), 4 * HOUR)
    assert due == paris(2026, 10, 26, 12, 0)
    assert due == datetime(2026, 10, 26, 11, 0, tzinfo=UTC)


def test_a_round_the_clock_calendar_counts_the_real_length_of_dst_days():
    allday = Calendar("allday", timezone="Europe/Paris", hours={"mon-sun": "00:00-24:00"})
    assert allday.business_seconds_between(paris(2026, 3, 29), paris(2026, 3, 30)) == 23 * HOUR
    assert allday.business_seconds_between(paris(2026, 10, 25), paris(2026, 10, 26)) == 25 * HOUR
    assert allday.add_business_time(paris(2026, 3, 28, 12), 24 * HOUR) == paris(2026, 3, 29, 13)
    assert allday.add_business_time(paris(2026, 10, 24, 12), 24 * HOUR) == paris(2026, 10, 25, 11)


def test_hours_spanning_the_dst_gap_and_overlap_count_real_time():
    night = Calendar("night", timezone="Europe/Paris", hours={"sun": "01:00-04:00"})
    spring = night.business_seconds_between(paris(2026, 3, 28), paris(2026, 3, 30))
    autumn = night.business_seconds_between(paris(2026, 10, 24), paris(2026, 10, 26))
    assert (spring, autumn) == (2 * HOUR, 4 * HOUR)
    # 01:00 CET + 1 h is 03:00 CEST.
    assert night.add_business_time(paris(2026, 3, 28), HOUR) == datetime(2026, 3, 29, 1, tzinfo=UTC)


def test_an_opening_time_skipped_by_dst_opens_when_the_clocks_jump():
    gap = Calendar("gap", timezone="Europe/Paris", hours={"sun": "02:30-05:00"})
    assert gap.add_business_time(paris(2026, 3, 28), 0) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert gap.business_seconds_between(paris(2026, 3, 28), paris(2026, 3, 30)) == 2 * HOUR


def test_a_day_long_target_runs_across_the_weekend(office):
    # Friday 17:00: 1 h on Friday, 3 h on Saturday, 9 h Monday, 9 h Tuesday, then 2 h on Wednesday.
    assert office.add_business_time(paris(2026, 11, 20, 17, 0), 24 * HOUR) == paris(2026, 11, 25, 11, 0)


def test_a_day_long_target_runs_across_a_long_weekend(office):
    # Easter Monday 6 April 2026 is a holiday: Fri 1 h, Sat 3 h, Tue 9 h, Wed 9 h, Thu 2 h.
    assert office.add_business_time(paris(2026, 4, 3, 17, 0), 24 * HOUR) == paris(2026, 4, 9, 11, 0)


def test_a_very_long_target_lands_on_the_right_day(office):
    # 480 open hours is exactly ten 48-hour weeks (no French holiday from January to mid-March).
    start = paris(2026, 1, 5, 9, 0)  # a Monday
    assert office.add_business_time(start, 480 * HOUR) == paris(2026, 3, 14, 13, 0)


@pytest.mark.parametrize(
    ("start", "due"),
    [
        (paris(2026, 11, 22, 15, 0), paris(2026, 11, 23, 9, 30)),  # Sunday afternoon
        (paris(2026, 11, 23, 7, 0), paris(2026, 11, 23, 9, 30)),  # Monday before opening
        (paris(2026, 11, 21, 13, 0), paris(2026, 11, 23, 9, 30)),  # Saturday at closing time
        (paris(2026, 11, 23, 22, 0), paris(2026, 11, 24, 9, 30)),  # Monday night
    ],
)
def test_counting_starts_at_the_next_opening_when_started_outside_hours(office, start, due):
    assert office.add_business_time(start, 30 * 60) == due


def test_no_time_added_outside_hours_gives_the_next_opening(office):
    assert office.add_business_time(paris(2026, 11, 22, 15, 0), 0) == paris(2026, 11, 23, 9, 0)
    assert office.add_business_time(paris(2026, 11, 23, 10, 0), 0) == paris(2026, 11, 23, 10, 0)


def test_business_seconds_between_counts_only_open_time(office):
    assert office.business_seconds_between(paris(2026, 11, 20, 17, 30), paris(2026, 11, 23, 9, 30)) == (
        0.5 * HOUR + 3 * HOUR + 0.5 * HOUR
    )
    assert office.business_seconds_between(paris(2026, 11, 22, 0), paris(2026, 11, 22, 23)) == 0
    assert office.business_seconds_between(paris(2026, 11, 23, 12), paris(2026, 11, 23, 10)) == 0


def test_is_open_follows_hours_and_holidays(office):
    assert office.is_open(paris(2026, 11, 23, 9, 0))
    assert not office.is_open(paris(2026, 11, 23, 18, 0))
    assert not office.is_open(paris(2026, 7, 14, 10, 0))
    assert ALWAYS_OPEN.is_open(paris(2026, 7, 14, 3, 0))


def test_the_always_calendar_is_plain_arithmetic():
    start = datetime(2026, 3, 29, 0, 30, tzinfo=PARIS)
    assert ALWAYS_OPEN.is_always
    assert ALWAYS_OPEN.add_business_time(start, 90.5) == start + timedelta(seconds=90.5)
    # Adding days to a Paris datetime moves its wall clock: across the spring change that is 71 real hours.
    assert ALWAYS_OPEN.business_seconds_between(start, start + timedelta(days=3)) == 71 * HOUR
    assert ALWAYS_OPEN.add_business_time(start, 1).tzinfo is UTC


def test_several_ranges_a_day_leave_the_lunch_break_out():
    split = Calendar("split", timezone="Europe/Paris", hours={"mon-fri": "09:00-12:00,14:00-18:00"})
    assert split.add_business_time(paris(2026, 11, 23, 11, 0), 2 * HOUR) == paris(2026, 11, 23, 15, 0)
    assert split.business_seconds_between(paris(2026, 11, 23), paris(2026, 11, 24)) == 7 * HOUR


def test_hours_accept_single_days_lists_several_ranges_and_midnight_end():
    week = parse_hours(
        {"sun": "20:00-24:00", "fri-sat": ["08:00-09:00", "10:00-11:00"], "mon,wed": "07:00-08:00"}
    )
    morning, two = ((420, 480),), ((480, 540), (600, 660))
    assert week == (morning, (), morning, (), two, two, ((1200, 1440),))


def test_a_day_range_may_wrap_round_the_week_end():
    assert [bool(day) for day in parse_hours({"fri-mon": "08:00-09:00"})] == [1, 0, 0, 0, 1, 1, 1]


def test_a_day_given_twice_is_refused():
    with pytest.raises(CalendarError, match="sun is given more than once"):
        parse_hours({"sun": "20:00-24:00", "fri-mon": "08:00-09:00"})


def test_naive_datetimes_are_refused(office):
    with pytest.raises(ValueError, match="timezone-aware"):
        office.add_business_time(datetime(2026, 11, 20, 17, 30), HOUR)


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"timezone": "Europe/Pariss", "hours": OFFICE_HOURS}, "timezone", "unknown timezone"),
        ({"timezone": "UTC", "hours": {"mon-fry": "09:00-18:00"}}, "hours", "bad day"),
        ({"timezone": "UTC", "hours": {"mon": "9h-18h"}}, "hours", "bad time"),
        ({"timezone": "UTC", "hours": {"mon": "09:00"}}, "hours", "bad range"),
        ({"timezone": "UTC", "hours": {"mon": "18:00-09:00"}}, "hours", "ends before it starts"),
        ({"timezone": "UTC", "hours": {"mon": "24:00-24:00"}}, "hours", "24:00 only as an end"),
        ({"timezone": "UTC", "hours": {"mon": "09:00-13:00,12:00-18:00"}}, "hours", "overlap"),
        ({"timezone": "UTC", "hours": {}}, "hours", "mapping"),
        ({"timezone": "UTC", "hours": OFFICE_HOURS, "holidays": "XX"}, "holidays", "XX"),
        (
            {"timezone": "UTC", "hours": OFFICE_HOURS, "holidays": "FR", "subdivision": "99"},
            "subdivision",
            "99",
        ),
        ({"timezone": "UTC", "hours": OFFICE_HOURS, "subdivision": "57"}, "subdivision", "country"),
    ],
)
def test_a_bad_calendar_names_the_field(kwargs, field, words):
    with pytest.raises(CalendarError, match=words) as caught:
        Calendar("bad", **kwargs)
    assert caught.value.field == field


# A calendar with split days, a midnight end and Sunday night hours across both Paris DST changes.
TRICKY = {"mon-fri": "09:00-12:00,14:00-18:00", "sat": "10:00-13:00", "sun": "00:00-01:30,03:30-24:00"}
TRICKY_RANGES = {
    d: [(int(a[:2]) * 60 + int(a[3:]), int(b[:2]) * 60 + int(b[3:])) for a, b in (r.split("-") for r in v)]
    for d, v in {
        0: ["09:00-12:00", "14:00-18:00"],
        1: ["09:00-12:00", "14:00-18:00"],
        2: ["09:00-12:00", "14:00-18:00"],
        3: ["09:00-12:00", "14:00-18:00"],
        4: ["09:00-12:00", "14:00-18:00"],
        5: ["10:00-13:00"],
        6: ["00:00-01:30", "03:30-24:00"],
    }.items()
}
FR_HOLIDAYS = holidays.country_holidays("FR")
STEP = timedelta(minutes=5)


def reference_open_seconds(start: datetime, end: datetime) -> float:
    """Count open time the slow, obvious way: look at the local wall clock every five minutes."""
    total, t = 0.0, start
    while t < end:
        local = t.astimezone(PARIS)
        minute = local.hour * 60 + local.minute
        if local.date() not in FR_HOLIDAYS and any(
            a <= minute < b for a, b in TRICKY_RANGES[local.weekday()]
        ):
            total += STEP.total_seconds()
        t += STEP
    return total


def random_start(rng: random.Random) -> datetime:
    # Starts on five-minute marks, DST weekends of 2026 (and their holidays) weighted in.
    base = rng.choice([datetime(2026, 3, 26, tzinfo=UTC), datetime(2026, 10, 22, tzinfo=UTC)])
    base = rng.choice([base, datetime(2025, 12, 20, tzinfo=UTC), datetime(2026, 4, 28, tzinfo=UTC)])
    return base + STEP * rng.randrange(0, 6 * 288)


def test_business_seconds_between_matches_a_minute_by_minute_count():
    calendar = Calendar("tricky", timezone="Europe/Paris", hours=TRICKY, holidays="FR")
    rng = random.Random(20260329)
    for _ in range(150):
        start = random_start(rng)
        end = start + STEP * rng.randrange(0, 3 * 288)
        assert calendar.business_seconds_between(start, end) == reference_open_seconds(start, end), start


def test_business_seconds_between_inverts_add_business_time():
    calendar = Calendar("tricky", timezone="Europe/Paris", hours=TRICKY, holidays="FR")
    rng = random.Random(1789)
    for _ in range(500):
        start = random_start(rng) + timedelta(seconds=rng.uniform(0, 300))
        seconds = rng.choice([0.0, rng.uniform(0, 3600), rng.uniform(0, 200 * 3600)])
        due = calendar.add_business_time(start, seconds)
        assert due >= start
        assert calendar.business_seconds_between(start, due) == pytest.approx(seconds, abs=1e-3)
        end = start + timedelta(seconds=rng.uniform(0, 10 * 86400))
        elapsed = calendar.business_seconds_between(start, end)
        back = calendar.add_business_time(start, elapsed)
        if calendar.is_open(end):
            assert abs(back - end) <= timedelta(microseconds=1)
        elif elapsed > 0:
            # `end` is in closed time: the count reaches `elapsed` at the last closing before it.
            assert back <= end and not calendar.is_open(back)
            assert calendar.business_seconds_between(back, end) == 0
