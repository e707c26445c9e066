"""Route classified messages by operator rules read from YAML: first match wins. Pure: no I/O but reading."""

from __future__ import annotations

import hashlib
import re
import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import getaddresses
from itertools import compress
from operator import attrgetter
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic
import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from router.routing import Decision
from switchboard import contract as sc
from switchboard.contract import ClassifiedMessage, Queue

SHIPPED_RULES = Path(__file__).with_name("rules.yaml")
RESERVED_NAMES = ("default", "low-confidence")
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[str, ...] = get_args(Day)
# Placeholders a skill-group template may use, and whether they come from the classification or the message.
TEMPLATE_FIELDS = dict.fromkeys(("intent", "language", "category", "priority", "sentiment"), "c") | {
    "channel": "m",
    "visibility": "m",
}
T = TypeVar("T")


class RulesError(ValueError):
    """A rules file that cannot be used; each problem names the rule and the field."""

    def __init__(self, problems: list[str], source: str = "rules") -> None:
        self.problems = tuple(problems)
        head = f"{source}: " if len(problems) == 1 else f"{len(problems)} problems in {source}:\n- "
        super().__init__(head + "\n- ".join(problems))


# --- The file's schema -------------------------------------------------------------------------------------


def _check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r} (use an IANA name such as Europe/Paris)") from None
    return name


def _parse_span(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text)
    start, end = (int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])) if m else (-1, -1)
    if not (m and int(m[2]) < 60 and int(m[4]) < 60 and 0 <= start < 1440 and 0 <= end <= 1440):
        raise ValueError(f"malformed time range {text!r}: write HH:MM-HH:MM, e.g. 18:00-08:00")
    if start == end % 1440:
        raise ValueError(f"time range {text!r} is empty; leave `between` out to match the whole day")
    return start, end


def _template_fields(template: str) -> tuple[str, ...]:
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"malformed template {template!r}: {exc}") from None
    for _, name, spec, conversion in parts:
        if name is not None and (name not in TEMPLATE_FIELDS or spec or conversion):
            raise ValueError(f"unknown placeholder {{{name}}}; use {', '.join(TEMPLATE_FIELDS)}")
    return tuple(name for _, name, _, _ in parts if name is not None)


# Where each channel's adapter puts the brand account a message was written to (`message.metadata`); any
# channel's `metadata.account`, a string, names one too (the generic API's callers may set it).
ACCOUNT_FIELDS: dict[str, str] = {
    "x": "for_user_id",
    "facebook": "page_id",
    "instagram": "account_id",
    "messenger": "account_id",
    "email": "to",
    "sms": "to",
}
_CHANNELS = tuple(c.value for c in sc.Channel)


def _check_account(account: str) -> str:
    channel, _, name = account.partition(":")
    if channel.strip().casefold() not in _CHANNELS or not name.strip():
        raise ValueError(
            f"account {account!r}: write <channel>:<the channel's id of the account>, e.g. x:783214, "
            f"facebook:1029384756, email:help@brand.example, sms:+33612345678 "
            f"(channels: {', '.join(_CHANNELS)})"
        )
    return account


def _account_key(channel: str, name: str) -> str:
    """Spell an account one way, for rules and messages alike: no space around the colon, case-folded."""
    return f"{channel.strip()}:{name.strip()}".casefold()


def _as_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def accounts_written_to(message: sc.Message) -> frozenset[str]:
    """Return the brand accounts a message was written to, as `<channel>:<id>`, case-folded: the X account
    of the webhook, the Facebook page, the Instagram or Messenger account, each address of an email's To,
    an SMS's number, and `metadata.account` when the sender of a generic API message gave one."""
    channel, metadata = message.channel.value, message.metadata
    found = []
    key = ACCOUNT_FIELDS.get(channel)
    value = metadata.get(key) if key else None
    if isinstance(value, str | int) and not isinstance(value, bool):
        if channel == "email":
            found += [address for _, address in getaddresses([str(value)]) if "@" in address]
        else:
            found.append(str(value))
    if isinstance(metadata.get("account"), str):
        found.append(metadata["account"])
    return frozenset(_account_key(channel, name) for name in found if name.strip())


def _check_keyword(word: str) -> str:
    if not word.strip(" *"):
        raise ValueError("a keyword must not be empty")
    return word


def _check(fn: Callable[[str], Any]) -> AfterValidator:
    """Validate a string with `fn` and keep the string."""
    return AfterValidator(lambda value: (fn(value), value)[1])


OneOrMany = Annotated[
    list[T], BeforeValidator(lambda v: v if isinstance(v, list) else [v]), Field(min_length=1)
]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Zone = Annotated[str, _check(_check_zone)]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AtLeastOne(Spec):
    @pydantic.model_validator(mode="after")
    def _not_empty(self) -> AtLeastOne:
        if not self.model_dump(exclude_defaults=True):
            raise ValueError(f"give at least one of {', '.join(type(self).model_fields)}")
        return self


class Compare(AtLeastOne):
    """A numeric test: every bound given must hold."""

    lt: float | None = None
    lte: float | None = None
    gt: float | None = None
    gte: float | None = None


class AuthorMatch(AtLeastOne):
    """Authors by handle (with or without @, any case) or by the channel's id."""

    handle_in: list[str] = []
    id_in: list[str] = []


class NamedList(Spec):
    """A reusable list of authors (top-level `lists:`), referenced by `vip: <name>`."""

    handles: list[str] = []
    ids: list[str] = []


class TimeMatch(AtLeastOne):
    """Local time of routing: a range of the day (may cross midnight) and/or weekdays."""

    between: Annotated[str, _check(_parse_span)] | None = None
    days: OneOrMany[Day] | None = None
    timezone: Zone | None = None


class When(Spec):
    """Conditions of a rule: all must hold; a list means any of its values."""

    channel: OneOrMany[sc.Channel] | None = None
    category: OneOrMany[sc.Category] | None = None
    intent: OneOrMany[sc.Intent] | None = None
    language: OneOrMany[sc.Language] | None = None
    priority: OneOrMany[sc.Priority] | None = None
    sentiment: OneOrMany[sc.Sentiment] | None = None
    visibility: OneOrMany[sc.Visibility] | None = None
    is_complaint: bool | None = None
    confidence: Compare | None = None
    sentiment_score: Compare | None = None
    followers: Compare | None = None
    author: AuthorMatch | None = None
    # A bare number (`account: 783214`) is read as text, so that the error says which form to write.
    account: OneOrMany[Annotated[str, BeforeValidator(_as_text), _check(_check_account)]] | None = None
    vip: OneOrMany[str] | None = None
    keywords: OneOrMany[Annotated[str, _check(_check_keyword)]] | None = None
    time: TimeMatch | None = None


class Route(Spec):
    """Where matching messages go."""

    queue: Queue
    skill_group: Annotated[str, _check(_template_fields)] | None = None
    priority: sc.Priority | None = None
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = []


class Rule(Route):
    """One rule: a name, its conditions and its route."""

    name: Name
    when: When
    applies_to_unsure: bool = False


class Defaults(Spec):
    """Where messages no rule matched go, by category."""

    support: Route
    marketing: Route


class RulesFile(Spec):
    """The whole rules file."""

    version: Literal[1]
    timezone: Zone = "UTC"
    review_below_confidence: float = Field(ge=0.0, le=1.0)
    # The threshold for a message the model would hand to marketing, when it differs: a complaint
    # wrongly left with marketing waits in public, so that hand-off may ask for more confidence.
    review_marketing_below_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    # A later message of an open case goes to the case's queue; one the rules send to customer service
    # moves a marketing or review case there. False: every message goes where it alone would.
    follow_the_case: bool = True
    lists: dict[Name, NamedList] = {}
    rules: list[Rule] = Field(min_length=1)
    default: Defaults


# --- Reading and checking a file ---------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Refuse duplicate keys, which plain YAML silently resolves to the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_rules(path: str | Path) -> RuleSet:
    """Read, check and compile a rules file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError([f"cannot read the file: {exc.strerror or exc}"], str(path)) from None
    return parse_rules(text, source=str(path))


def parse_rules(text: str, source: str = "rules") -> RuleSet:
    """Check and compile the text of a rules file; raise RulesError naming every problem."""
    try:
        raw = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None) or exc
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise RulesError([f"{where}not valid YAML: {problem}"], source) from None
    if not isinstance(raw, dict):
        raise RulesError(["expected a mapping with version, review_below_confidence, rules, default"], source)
    try:
        spec = RulesFile.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise RulesError([_explain(err, raw) for err in exc.errors()], source) from None
    problems = _cross_check(spec)
    if problems:
        raise RulesError(problems, source)
    return _compile(spec, "sha256:" + hashlib.sha256(text.encode()).hexdigest())


def _rule_label(index: int, name: Any) -> str:
    return f"rule #{index + 1} {name!r}" if isinstance(name, str) else f"rule #{index + 1}"


def _explain(err: Any, raw: dict[str, Any]) -> str:
    loc, where = list(err["loc"]), ""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rules = raw.get("rules")
        name = rules[loc[1]].get("name") if isinstance(rules[loc[1]], dict) else None
        where, loc = _rule_label(loc[1], name), loc[2:]
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "string_pattern_mismatch":
        msg = "use letters, digits, '-', '_' and '.' only, at most 64, starting with a letter or digit"
    if err["type"] == "extra_forbidden":
        msg = f"unknown field (expected one of: {', '.join(_model_at(err['loc'][:-1]).model_fields)})"
    return ": ".join(part for part in (where, field, msg) if part)


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel]:
    model: type[BaseModel] = RulesFile
    for key in loc:
        if isinstance(key, str) and key in model.model_fields:
            model = _inner_model(model.model_fields[key].annotation) or model
    return model


def _inner_model(tp: Any) -> type[BaseModel] | None:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    return next((m for m in map(_inner_model, get_args(tp)) if m is not None), None)


def _cross_check(spec: RulesFile) -> list[str]:
    problems, first_seen = [], {}
    for i, rule in enumerate(spec.rules):
        label = _rule_label(i, rule.name)
        if rule.name in RESERVED_NAMES:
            problems.append(f"{label}: name: {rule.name!r} is reserved for the built-in outcomes")
        if rule.name in first_seen:
            problems.append(f"{label}: name: duplicate of rule #{first_seen[rule.name] + 1}")
        first_seen.setdefault(rule.name, i)
        if not rule.when.model_dump(exclude_none=True):
            problems.append(f"{label}: when: no conditions; a rule must test at least one field")
        for name in rule.when.vip or ():
            if name not in spec.lists:
                defined = ", ".join(spec.lists) or "none"
                problems.append(f"{label}: when.vip: undefined list {name!r} (lists defined: {defined})")
    return problems


# --- Compiled form -----------------------------------------------------------------------------------------


_MARKS = re.compile("[\u0300-\u036f]")


def fold(text: str) -> str:
    """Case-fold and strip accents, so keywords match whatever the customer typed."""
    text = text.casefold()
    if text.isascii():
        return text
    text = _MARKS.sub("", unicodedata.normalize("NFKD", text))
    return text.replace("œ", "oe").replace("æ", "ae").replace("\u2019", "'")


def _keyword_parts(words: list[str]) -> list[str]:
    parts = []
    for word in words:
        folded = fold(word.strip())
        stem, folded = folded.endswith("*"), folded.rstrip("* ")
        body = r"\s+".join(map(re.escape, folded.split()))
        # The boundary test sits after the first literal so the regex engine can skip ahead by first letter.
        if re.match(r"\w", body):
            body = body[0] + r"(?<!\w.)" + body[1:]
        parts.append(body + (r"\w*" if stem else r"(?!\w)" if re.search(r"\w$", body) else ""))
    return parts


class _Facts:
    """One message as rules see it; the folded text and local time are computed once, when needed."""

    __slots__ = ("_accounts", "_local", "_text", "_zone", "c", "m", "now")

    def __init__(self, classified: ClassifiedMessage, now: datetime) -> None:
        self.m, self.c, self.now = classified.message, classified.classification, now
        self._text: str | None = None
        self._zone: ZoneInfo | None = None
        self._accounts: frozenset[str] | None = None

    def accounts(self) -> frozenset[str]:
        if self._accounts is None:
            self._accounts = accounts_written_to(self.m)
        return self._accounts

    def text(self) -> str:
        if self._text is None:
            self._text = fold(self.m.text)
        return self._text

    def local(self, zone: ZoneInfo) -> datetime:
        if self._zone is not zone:
            self._zone, self._local = zone, self.now.astimezone(zone)
        return self._local


Check = Callable[[_Facts], bool]


def _is_in(path: str, values: frozenset[Any]) -> Check:
    get = attrgetter(path)
    return lambda f: get(f) in values


def _compare(path: str, cmp: Compare) -> Check:
    get, inf = attrgetter(path), float("inf")
    gt, gte = (-inf if b is None else b for b in (cmp.gt, cmp.gte))
    lt, lte = (inf if b is None else b for b in (cmp.lt, cmp.lte))
    return lambda f: (v := get(f)) is not None and gt < v < lt and gte <= v <= lte


def _author(handle_list: list[str], id_list: list[str]) -> Check:
    handles, ids = frozenset(h.lstrip("@").casefold() for h in handle_list), frozenset(id_list)

    def check(f: _Facts) -> bool:
        a = f.m.author
        return a.id in ids or (a.handle is not None and a.handle.lstrip("@").casefold() in handles)

    return check


def _account(names: list[str]) -> Check:
    split = (name.partition(":") for name in names)
    wanted = frozenset(_account_key(channel, name) for channel, _, name in split)
    return lambda f: not wanted.isdisjoint(f.accounts())


def _time(spec: TimeMatch, zone: ZoneInfo) -> Check:
    days = frozenset(DAYS.index(d) for d in spec.days) if spec.days else None
    start, end = _parse_span(spec.between) if spec.between else (0, 1440)

    def check(f: _Facts) -> bool:
        t = f.local(zone)
        if days is not None and t.weekday() not in days:
            return False
        minute = t.hour * 60 + t.minute
        return start <= minute < end if start < end else minute >= start or minute < end

    return check


def _keywords(words: list[str]) -> Check:
    # A regex scan costs ~20 ns a character while `in` is a C substring search, so the text is scanned only
    # when it holds every word of some keyword, to check the word boundaries.
    needles = tuple(tuple(fold(word).rstrip("* ").split()) for word in words)
    longest = tuple(max(parts, key=len) for parts in needles)
    search = re.compile("|".join(_keyword_parts(words))).search

    def check(f: _Facts) -> bool:
        text = f.text()
        for parts in compress(needles, map(text.__contains__, longest)):
            if all(part in text for part in parts):
                return search(text) is not None
        return False

    return check


def _checks(when: When, spec: RulesFile) -> tuple[Check, ...]:
    """Compile a rule's conditions, cheapest first; category and intent are settled by the index."""
    checks: list[Check] = []
    for name in ("language", "priority", "sentiment", "channel", "visibility", "is_complaint"):
        if (values := getattr(when, name)) is not None:
            path = f"{TEMPLATE_FIELDS.get(name, 'c')}.{name}"
            checks.append(_is_in(path, frozenset(values if isinstance(values, list) else [values])))
    for name, path in (("confidence", "c"), ("sentiment_score", "c"), ("followers", "m.author")):
        if (cmp := getattr(when, name)) is not None:
            checks.append(_compare(f"{path}.{name}", cmp))
    if when.author is not None:
        checks.append(_author(when.author.handle_in, when.author.id_in))
    if when.account is not None:
        checks.append(_account(when.account))
    if when.vip is not None:
        named = [spec.lists[n] for n in when.vip]
        checks.append(_author([h for n in named for h in n.handles], [i for n in named for i in n.ids]))
    if when.time is not None:
        checks.append(_time(when.time, ZoneInfo(when.time.timezone or spec.timezone)))
    if when.keywords is not None:
        checks.append(_keywords(when.keywords))
    return tuple(checks)


@dataclass(frozen=True, slots=True)
class _Route:
    rule: str
    queue: Queue
    skill_group: str | None
    fields: tuple[str, ...]
    values: Callable[[ClassifiedMessage], Any] | None
    priority: str | None
    tags: tuple[str, ...]
    made: dict[tuple[Any, ...], Decision] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, rule: str, route: Route) -> _Route:
        fields = _template_fields(route.skill_group) if route.skill_group else ()
        paths = [f"{'classification' if TEMPLATE_FIELDS[n] == 'c' else 'message'}.{n}" for n in fields]
        values = attrgetter(*paths) if paths else None
        tags = tuple(dict.fromkeys(route.tags))
        return cls(rule, route.queue, route.skill_group, fields, values, route.priority, tags)

    def decision(self, classified: ClassifiedMessage, tags: tuple[str, ...]) -> Decision:
        # A decision depends on a few enum values only and is immutable, so each is built once and shared:
        # building a frozen dataclass costs about a microsecond.
        key = (self.values(classified) if self.values else None, classified.classification.priority, tags)
        decision = self.made.get(key)
        if decision is None:
            skill = self.skill_group
            if skill is not None and self.fields:
                values = key[0] if len(self.fields) > 1 else (key[0],)
                skill = skill.format_map(dict(zip(self.fields, values, strict=True)))
            all_tags = tuple(dict.fromkeys((*tags, *self.tags)))
            decision = Decision(self.queue, self.rule, skill, self.priority or key[1], all_tags)
            if len(self.made) < 10_000:
                self.made[key] = decision
        return decision


@dataclass(frozen=True, slots=True)
class _Rule:
    checks: tuple[Check, ...]
    route: _Route


_BASE_TAGS = {
    (complaint, unsure): ("complaint",) * complaint + ("unsure",) * unsure
    for complaint in (False, True)
    for unsure in (False, True)
}


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A checked, compiled rules file. Immutable, so the router can swap the live one in one assignment."""

    spec: RulesFile
    digest: str
    review_below_confidence: float
    # (category, intent, unsure) -> the rules that can match such a message, in file order.
    index: dict[tuple[str, str, bool], tuple[_Rule, ...]]
    # The category, or "review" when unsure -> where a message goes when no rule matched.
    fallback: dict[str, _Route]
    # Below it a message the model calls marketing is unsure (review_below_confidence when None).
    review_marketing_below_confidence: float | None = None

    @property
    def follow_the_case(self) -> bool:
        """Whether a case's later messages go to its queue (and may escalate it to customer service)."""
        return self.spec.follow_the_case

    def unsure_below(self, category: str) -> float:
        """Return the confidence under which a message of this category goes to review."""
        if category == "marketing" and self.review_marketing_below_confidence is not None:
            return self.review_marketing_below_confidence
        return self.review_below_confidence

    def decide(self, classified: ClassifiedMessage, now: datetime) -> Decision:
        """Route a message: the first rule that matches, else review when unsure, else the category default.

        `now` is the moment of routing (time rules test it); a naive datetime is taken as UTC.
        """
        c = classified.classification
        unsure = c.confidence < self.unsure_below(c.category)
        tags = _BASE_TAGS[c.is_complaint, unsure]
        rules = self.index[c.category, c.intent, unsure]
        if rules:
            facts = _Facts(classified, now if now.tzinfo is not None else now.replace(tzinfo=UTC))
            for rule in rules:
                for check in rule.checks:
                    if not check(facts):
                        break
                else:
                    return rule.route.decision(classified, tags)
        return self.fallback["review" if unsure else c.category].decision(classified, tags)

    def describe(self) -> dict[str, Any]:
        """Summarise the rules for operators (`/v1/rules`): version, content hash, rule names in order."""
        return {
            "version": self.spec.version,
            "hash": self.digest,
            "timezone": self.spec.timezone,
            "review_below_confidence": self.review_below_confidence,
            "review_marketing_below_confidence": self.unsure_below("marketing"),
            "follow_the_case": self.follow_the_case,
            "rules": [r.name for r in self.spec.rules],
            "applies_to_unsure": [r.name for r in self.spec.rules if r.applies_to_unsure],
            "lists": list(self.spec.lists),
        }


def _fits(rule: Rule, category: str, intent: str, unsure: bool) -> bool:
    when = rule.when
    return (
        (rule.applies_to_unsure or not unsure)
        and (when.category is None or category in when.category)
        and (when.intent is None or intent in when.intent)
    )


def _compile(spec: RulesFile, digest: str) -> RuleSet:
    compiled = [(r, _Rule(_checks(r.when, spec), _Route.of(r.name, r))) for r in spec.rules]
    index = {
        (category, intent, unsure): tuple(c for r, c in compiled if _fits(r, category, intent, unsure))
        for category in get_args(sc.Category)
        for intent in get_args(sc.Intent)
        for unsure in (False, True)
    }
    fallback = {
        "support": _Route.of("default", spec.default.support),
        "marketing": _Route.of("default", spec.default.marketing),
        "review": _Route.of("low-confidence", Route(queue=Queue.REVIEW)),
    }
    return RuleSet(
        spec, digest, spec.review_below_confidence, index, fallback, spec.review_marketing_below_confidence
    )
