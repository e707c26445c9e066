"""Business calendars: when SLA clocks run. Pure: no I/O, no clock (time is always passed in).

A calendar is a timezone, weekly opening hours and public holidays. Opening hours are local wall time,
so each day's intervals are computed in the calendar's timezone and converted to UTC one by one: a
DST weekend then shortens or lengthens the open time it really does, and nothing else moves.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALWAYS = "always"
_DAY_MINUTES = 24 * 60
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_ONE_DAY = timedelta(days=1)

# Per weekday (Monday first), the sorted, disjoint open ranges in minutes since local midnight.
WeeklyHours = tuple[tuple[tuple[int, int], ...], ...]


class CalendarError(ValueError):
    """A calendar definition is invalid; `field` names the offending setting."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _parse_days(key: str) -> list[int]:
    days: list[int] = []
    for part in str(key).lower().replace(" ", "").split(","):
        first, sep, last = part.partition("-")
        if first not in WEEKDAYS or (sep and last not in WEEKDAYS):
            raise CalendarError(
                "hours", f"bad day {key!r}: use mon..sun, a range such as mon-fri, or a list such as sat,sun"
            )
        i, j = WEEKDAYS.index(first), WEEKDAYS.index(last if sep else first)
        # A range may wrap round the week end (fri-mon).
        days.extend((i + k) % 7 for k in range((j - i) % 7 + 1))
    return days


def _parse_minute(text: str, ranges: str, *, end: bool) -> int:
    m = _TIME.match(text.strip())
    hour, minute = (int(m[1]), int(m[2])) if m else (-1, -1)
    if (hour, minute) == (24, 0) and end:
        return _DAY_MINUTES
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise CalendarError(
            "hours", f"bad time {text.strip()!r} in {ranges!r}: use HH:MM (24:00 only as an end)"
        )
    return hour * 60 + minute


def _parse_ranges(value: str | Sequence[str], key: str) -> list[tuple[int, int]]:
    parts = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    ranges: list[tuple[int, int]] = []
    for part in parts:
        start, sep, end = part.partition("-")
        if not sep:
            raise CalendarError("hours", f"bad range {part.strip()!r} for {key}: use HH:MM-HH:MM")
        lo, hi = _parse_minute(start, part, end=False), _parse_minute(end, part, end=True)
        if lo >= hi:
            raise CalendarError("hours", f"range {part.strip()!r} for {key} ends before it starts")
        ranges.append((lo, hi))
    return ranges


def parse_hours(hours: Mapping[str, str | Sequence[str]]) -> WeeklyHours:
    """Parse opening hours such as {"mon-fri": "09:00-12:00,14:00-18:00", "sat": "10:00-13:00"}.

    Days not listed are closed. Raises CalendarError (field "hours") on anything ambiguous.
    """
    if not isinstance(hours, Mapping) or not hours:
        raise CalendarError("hours", "give opening hours as a mapping such as {mon-fri: 09:00-18:00}")
    week: list[list[tuple[int, int]] | None] = [None] * 7
    for key, value in hours.items():
        ranges = _parse_ranges(value, str(key))
        for day in _parse_days(key):
            if week[day] is not None:
                raise CalendarError("hours", f"{WEEKDAYS[day]} is given more than once")
            ordered = sorted(ranges)
            for (_, end), (start, _) in itertools.pairwise(ordered):
                if start < end:
                    raise CalendarError("hours", f"ranges of {key} overlap")
            week[day] = ordered
    return tuple(tuple(day or ()) for day in week)


class Calendar:
    """When SLA clocks run: opening hours in a timezone, minus public holidays; or always (24/7)."""

    def __init__(
        self,
        name: str = ALWAYS,
        *,
        timezone: str = "UTC",
        hours: Mapping[str, str | Sequence[str]] | None = None,
        holidays: str | None = None,
        subdivision: str | None = None,
    ) -> None:
        """Build a calendar; without `hours` it is open all the time. Raises CalendarError."""
        self.name = name
        self.timezone = timezone
        try:
            self._zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise CalendarError(
                "timezone", f"unknown timezone {timezone!r}: use an IANA name such as Europe/Paris"
            ) from None
        self._always = hours is None
        self._week: WeeklyHours = parse_hours(hours) if hours is not None else ()
        if not self._always and not any(self._week):
            raise CalendarError("hours", "the calendar is never open")
        if self._always and holidays:
            raise CalendarError("holidays", "holidays need opening hours (use 00:00-24:00 for all day)")
        self.holidays = holidays
        self._holidays: holidays_lib.HolidayBase | None = None
        if holidays:
            try:
                self._holidays = holidays_lib.country_holidays(holidays.upper(), subdiv=subdivision)
            except NotImplementedError as e:
                field = "subdivision" if subdivision and "subdivision" in str(e) else "holidays"
                raise CalendarError(field, f"{e} (use an ISO code such as FR)") from None
        elif subdivision:
            raise CalendarError("subdivision", "a subdivision needs a holidays country")

    @property
    def is_always(self) -> bool:
        """Return whether the calendar is open 24/7."""
        return self._always

    def __repr__(self) -> str:
        return f"Calendar({self.name!r}, timezone={self.timezone!r}, holidays={self.holidays!r})"

    def add_business_time(self, start: datetime, seconds: float) -> datetime:
        """Return when `seconds` of open time have elapsed after `start`, as an aware UTC datetime.

        Outside opening hours counting starts at the next opening, so zero seconds gives that opening.
        """
        start = _utc(start)
        if seconds < 0:
            raise ValueError(f"cannot add negative business time ({seconds} s)")
        if self._always:
            return start + timedelta(seconds=seconds)
        # Whole microseconds (timedelta) rather than float seconds, so a sum never drifts past a closing.
        remaining = timedelta(seconds=seconds)
        for opened, closes in self._intervals(start):
            if remaining <= closes - opened:
                return opened + remaining
            remaining -= closes - opened
        raise AssertionError("unreachable: the week has open time")  # pragma: no cover

    def business_seconds_between(self, start: datetime, end: datetime) -> float:
        """Return the open time elapsed from `start` to `end`, in seconds (0 when end <= start)."""
        start, end = _utc(start), _utc(end)
        if end <= start:
            return 0.0
        if self._always:
            return (end - start).total_seconds()
        total = timedelta()
        for opened, closes in self._intervals(start):
            if opened >= end:
                break
            total += min(closes, end) - opened
        return total.total_seconds()

    def is_open(self, at: datetime) -> bool:
        """Return whether SLA clocks run at `at`."""
        at = _utc(at)
        return self._always or next(self._intervals(at))[0] == at

    def _intervals(self, since: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Yield the UTC open intervals that end after `since`, the first clipped to start at it."""
        # The day before too: an interval ending at 24:00 may end after `since` near a midnight transition.
        day = since.astimezone(self._zone).date() - _ONE_DAY
        while True:
            if self._holidays is None or day not in self._holidays:
                for lo, hi in self._week[day.weekday()]:
                    closes = self._to_utc(day, hi)
                    if closes > since:
                        yield max(self._to_utc(day, lo), since), closes
            day += _ONE_DAY

    def _to_utc(self, day: date, minute: int) -> datetime:
        """Return the UTC instant of a local wall time; a time skipped by DST maps to the transition."""
        if minute == _DAY_MINUTES:
            day, minute = day + _ONE_DAY, 0
        wall = datetime.combine(day, time(minute // 60, minute % 60))
        # fold=0 takes the first of two ambiguous (fall-back) times: the wall clock shows it first.
        utc = wall.replace(tzinfo=self._zone).astimezone(UTC)
        if utc.astimezone(self._zone).replace(tzinfo=None) == wall:
            return utc
        # In a spring-forward gap: bisect to the transition, the first instant the clock shows >= wall.
        lo, hi = wall.replace(tzinfo=self._zone, fold=1).astimezone(UTC), utc
        while hi - lo > timedelta(seconds=1):
            mid = lo + timedelta(seconds=(hi - lo).total_seconds() // 2)
            if mid.astimezone(self._zone).replace(tzinfo=None) < wall:
                lo = mid
            else:
                hi = mid
        return hi


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"datetime {at.isoformat()} must be timezone-aware")
    return at.astimezone(UTC)


ALWAYS_OPEN = Calendar(ALWAYS)
