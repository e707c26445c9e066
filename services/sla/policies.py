"""SLA policies from a YAML file: which targets a case gets and when its clocks warn, breach and escalate.

Pure apart from reading the file: every time is passed in. The file holds named business calendars and
an ordered list of policies; the first policy whose `match` fits a case applies.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, get_args

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from sla.calendar import ALWAYS, ALWAYS_OPEN, Calendar, CalendarError
from switchboard.contract import (
    Category,
    Channel,
    Intent,
    Language,
    Priority,
    Queue,
    RoutedCase,
    SlaClock,
    Visibility,
)

CLOCKS: tuple[SlaClock, ...] = get_args(SlaClock)
# The match keys read on the routed case; the others (category, intent, is_complaint, language) are
# read on its classification.
CASE_FIELDS = ("channel", "visibility", "queue", "priority", "skill_group")
# A key the case holds several values of: the policy matches when one of them is allowed.
CASE_SETS = {"tag": "tags"}
_NUMBER = r"(\d+(?:\.\d+)?)"
_DURATION = re.compile(f"^(?:{_NUMBER}d)?(?:{_NUMBER}h)?(?:{_NUMBER}m)?(?:{_NUMBER}s)?$")
_UNIT_SECONDS = (86400, 3600, 60, 1)
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class PolicyError(ValueError):
    """The policy file is invalid; the message names the policy or calendar and the field, one per line."""

    def __init__(self, problems: list[str], source: str = "SLA policies") -> None:
        self.problems = problems
        super().__init__(f"invalid {source}:\n" + "\n".join(f"  {p}" for p in problems))


def parse_duration(value: Any) -> float:
    """Return the seconds of a duration such as "30m", "1h30m", "2d", "45s" or a plain number of seconds."""
    text = "" if isinstance(value, bool) else str(value).strip().lower().replace(" ", "")
    m = _DURATION.match(text)
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif re.fullmatch(_NUMBER, text):
        seconds = float(text)
    elif text and m:
        seconds = sum(float(n) * unit for n, unit in zip(m.groups(), _UNIT_SECONDS, strict=True) if n)
    else:
        raise ValueError(f"bad duration {value!r}: use e.g. 30m, 1h30m, 2d or a number of seconds")
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"duration {value!r} must be positive")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
Label = Annotated[str, Field(min_length=1, max_length=200)]


def _listed(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


def _any_of(kind: Any) -> Any:
    return Annotated[list[kind] | None, BeforeValidator(lambda v: v if v is None else _listed(v))]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _MatchSpec(_Spec):
    channel: _any_of(Channel) = Field(default=None, min_length=1)
    category: _any_of(Category) = Field(default=None, min_length=1)
    intent: _any_of(Intent) = Field(default=None, min_length=1)
    is_complaint: _any_of(bool) = Field(default=None, min_length=1)
    visibility: _any_of(Visibility) = Field(default=None, min_length=1)
    priority: _any_of(Priority) = Field(default=None, min_length=1)
    queue: _any_of(Queue) = Field(default=None, min_length=1)
    language: _any_of(Language) = Field(default=None, min_length=1)
    # What the routing rule set: any of the case's tags ("vip", "service-handle", the router's "complaint",
    # "escalated"...), or its skill group.
    tag: _any_of(Label) = Field(default=None, min_length=1)
    skill_group: _any_of(Label) = Field(default=None, min_length=1)


class _CalendarSpec(_Spec):
    timezone: str
    hours: dict[str, str | list[str]]
    holidays: str | None = None
    subdivision: str | None = None


class _PolicySpec(_Spec):
    name: str = Field(pattern=_NAME)
    match: _MatchSpec = Field(default_factory=_MatchSpec)
    first_response: Duration
    next_response: Duration | None = None
    resolution: Duration | None = None
    warn_at: list[float] = Field(default_factory=lambda: [0.8])
    escalate_after_breach: list[Duration] = Field(default_factory=list)
    calendar: str = ALWAYS

    @field_validator("warn_at")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        for fraction in v:
            if not 0 < fraction < 1:
                raise ValueError(f"{fraction} is not a fraction of the target strictly between 0 and 1")
        return sorted(set(v))

    @field_validator("escalate_after_breach")
    @classmethod
    def _increasing(cls, v: list[float]) -> list[float]:
        if any(b <= a for a, b in itertools.pairwise(v)):
            raise ValueError("delays must increase: each level is measured from the breach")
        return v


class _FileSpec(_Spec):
    calendars: dict[str, Any] = Field(default_factory=dict)
    policies: list[Any] = Field(min_length=1)


def _problems(error: ValidationError, where: str, model: type[BaseModel]) -> list[str]:
    out = []
    for e in error.errors():
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"]).lstrip(".")
        if e["type"] == "extra_forbidden":
            owner = _MatchSpec if e["loc"][0] == "match" else model
            message = f"unknown key (allowed: {', '.join(owner.model_fields)})"
        elif e["type"] == "value_error":
            message = str(e["ctx"]["error"])
        else:
            message = f"{e['msg']} (got {e['input']!r})" if e["type"] != "missing" else "required"
        out.append(f"{where}: {path}: {message}" if path else f"{where}: {message}")
    return out


def _matches(criteria: Mapping[str, frozenset[Any]], case: RoutedCase) -> bool:
    for key, allowed in criteria.items():
        if key in CASE_SETS:
            if allowed.isdisjoint(getattr(case, CASE_SETS[key])):
                return False
            continue
        owner = case if key in CASE_FIELDS else case.classification
        value = getattr(owner, key)
        if (value.value if isinstance(value, Enum) else value) not in allowed:
            return False
    return True


@dataclass(frozen=True)
class Policy:
    """One named SLA policy: its targets in seconds of business time, its warnings and escalations."""

    name: str
    targets: Mapping[SlaClock, float]
    calendar: Calendar = ALWAYS_OPEN
    warn_at: tuple[float, ...] = (0.8,)
    escalate_after_breach: tuple[float, ...] = ()
    match: Mapping[str, frozenset[Any]] = field(default_factory=dict)

    def matches(self, case: RoutedCase) -> bool:
        """Return whether this policy's `match` fits the case."""
        return _matches(self.match, case)

    def target(self, clock: SlaClock) -> float:
        """Return the target of a clock in seconds; KeyError when this policy does not run that clock."""
        if clock not in self.targets:
            raise KeyError(f"policy {self.name!r} runs no {clock} clock")
        return self.targets[clock]

    def due(self, clock: SlaClock, start: datetime) -> datetime:
        """Return when a clock started at `start` breaches (aware UTC)."""
        return self.calendar.add_business_time(start, self.target(clock))

    def warn_times(self, clock: SlaClock, start: datetime) -> list[tuple[float, datetime]]:
        """Return each warning threshold of a clock started at `start` with the time it is reached."""
        target = self.target(clock)
        return [(f, self.calendar.add_business_time(start, target * f)) for f in self.warn_at]

    def escalation_times(self, clock: SlaClock, start: datetime) -> list[tuple[int, datetime]]:
        """Return the escalation levels (2, 3, ...) of a clock started at `start` and when each is due.

        Level 1 is the breach itself; each further level comes its delay of business time after it.
        """
        due = self.due(clock, start)
        return [
            (level, self.calendar.add_business_time(due, delay))
            for level, delay in enumerate(self.escalate_after_breach, start=2)
        ]

    def elapsed(self, start: datetime, at: datetime) -> float:
        """Return the business seconds elapsed on a clock started at `start`, at `at`."""
        return self.calendar.business_seconds_between(start, at)

    def scaled(self, factor: float) -> Policy:
        """Return a copy with every duration multiplied by `factor`."""
        if not factor > 0:
            raise ValueError(f"scale factor must be positive, not {factor}")
        return replace(
            self,
            targets={clock: s * factor for clock, s in self.targets.items()},
            escalate_after_breach=tuple(d * factor for d in self.escalate_after_breach),
        )


@dataclass(frozen=True)
class PolicySet:
    """The ordered policies of a file and its calendars; the first matching policy applies."""

    policies: tuple[Policy, ...]
    calendars: Mapping[str, Calendar] = field(default_factory=lambda: {ALWAYS: ALWAYS_OPEN})

    def match(self, case: RoutedCase) -> Policy | None:
        """Return the first policy that fits the case, or None."""
        return next((p for p in self.policies if p.matches(case)), None)

    def get(self, name: str) -> Policy | None:
        """Return the policy of that name, or None."""
        return next((p for p in self.policies if p.name == name), None)

    def scaled(self, factor: float) -> PolicySet:
        """Return a copy with every duration multiplied by `factor` (demos shrink hours to seconds)."""
        return replace(self, policies=tuple(p.scaled(factor) for p in self.policies))

    def __iter__(self) -> Iterator[Policy]:
        return iter(self.policies)

    def __len__(self) -> int:
        return len(self.policies)


def _calendar(name: str, raw: Any) -> Calendar:
    where = f"calendar {name!r}"
    if name == ALWAYS:
        raise PolicyError([f"{where}: the name is built in (24/7); choose another"])
    if not re.match(_NAME, name):
        raise PolicyError([f"{where}: name must be letters, digits, '-', '_' or '.'"])
    try:
        spec = _CalendarSpec.model_validate(raw)
    except ValidationError as e:
        raise PolicyError(_problems(e, where, _CalendarSpec)) from None
    try:
        return Calendar(
            name,
            timezone=spec.timezone,
            hours=spec.hours,
            holidays=spec.holidays,
            subdivision=spec.subdivision,
        )
    except CalendarError as e:
        raise PolicyError([f"{where}: {e.field}: {e}"]) from None


def _policy(index: int, raw: Any, calendars: Mapping[str, Calendar], broken: set[str]) -> Policy:
    name = raw.get("name") if isinstance(raw, dict) else None
    where = f"policy {name!r}" if isinstance(name, str) else f"policy #{index + 1}"
    try:
        spec = _PolicySpec.model_validate(raw)
    except ValidationError as e:
        raise PolicyError(_problems(e, where, _PolicySpec)) from None
    if spec.calendar in broken:
        raise PolicyError([])  # Its calendar's own error already says what to fix.
    if spec.calendar not in calendars:
        known = ", ".join(sorted(calendars))
        raise PolicyError([f"{where}: calendar: unknown calendar {spec.calendar!r} (known: {known})"])
    targets = {c: getattr(spec, c) for c in CLOCKS if getattr(spec, c) is not None}
    criteria = {
        key: frozenset(v.value if isinstance(v, Enum) else v for v in values)
        for key, values in spec.match.model_dump(exclude_none=True).items()
    }
    return Policy(
        name=spec.name,
        targets=targets,
        calendar=calendars[spec.calendar],
        warn_at=tuple(spec.warn_at),
        escalate_after_breach=tuple(spec.escalate_after_breach),
        match=criteria,
    )


def _build(data: Any) -> PolicySet:
    if not isinstance(data, dict):
        raise PolicyError(["the file must be a mapping with `calendars` (optional) and `policies`"])
    try:
        spec = _FileSpec.model_validate(data)
    except ValidationError as e:
        raise PolicyError(_problems(e, "file", _FileSpec)) from None
    calendars: dict[str, Calendar] = {ALWAYS: ALWAYS_OPEN}
    problems: list[str] = []
    broken: set[str] = set()
    for name, raw in spec.calendars.items():
        try:
            calendars[str(name)] = _calendar(str(name), raw)
        except PolicyError as e:
            problems += e.problems
            broken.add(str(name))
    policies: list[Policy] = []
    for i, raw in enumerate(spec.policies):
        try:
            policies.append(_policy(i, raw, calendars, broken))
        except PolicyError as e:
            problems += e.problems
    seen: set[str] = set()
    catch_all: str | None = None
    for p in policies:
        if p.name in seen:
            problems.append(f"policy {p.name!r}: name: another policy has this name")
        if catch_all:
            problems.append(
                f"policy {p.name!r}: match: never used, {catch_all!r} before it matches every case"
            )
        seen.add(p.name)
        catch_all = catch_all or (p.name if not p.match else None)
    if problems:
        raise PolicyError(problems)
    return PolicySet(tuple(policies), calendars)


def parse_policies(text: str, source: str = "SLA policies") -> PolicySet:
    """Parse and validate a YAML policy document; raise PolicyError naming every problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise PolicyError([f"not valid YAML: {e}"], source) from None
    try:
        return _build(data)
    except PolicyError as e:
        raise PolicyError(e.problems, source) from None


def load_policies(path: str | Path) -> PolicySet:
    """Read, parse and validate a YAML policy file; raise PolicyError naming every problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise PolicyError([f"cannot read the file: {e.strerror}"], f"SLA policy file {path}") from None
    return parse_policies(text, f"SLA policy file {path}")


def default_policies_path() -> Path:
    """Return the path of the example policy file that ships with the sla package."""
    return Path(__file__).with_name("policies.yaml")
