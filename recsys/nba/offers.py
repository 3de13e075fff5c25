"""The offer catalog: a TOML file of offers, a contact policy and experiments, validated with clear errors.

See ``examples/offers.toml`` for every field. Money (``value``, ``cost``, ``contact_cost``,
``max_spend``) is read as ``Decimal``; the service counts spend in integer cents.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, overload

from recsys.config_files import read_toml
from recsys.exceptions import ConfigError
from recsys.nba.experiments import Experiment, experiment_from_dict
from recsys.nba.expressions import Expression, parse
from recsys.nba.lifecycle_defaults import GOALS

KINDS = (
    "percent_discount",
    "amount_discount",
    "points_multiplier",
    "free_shipping",
    "loyalty_reward",
    "service_recovery",
    "content",
)
CHANNELS = ("web", "app", "email", "push")
# Prior acceptance rates by kind, used where no response data exists (see ``propensity.prior_probability``):
# content is cheap to ignore, money off is taken most often. An offer's ``base_rate`` overrides this.
BASE_RATES = {
    "percent_discount": 0.08,
    "amount_discount": 0.08,
    "points_multiplier": 0.05,
    "free_shipping": 0.06,
    "loyalty_reward": 0.10,
    "service_recovery": 0.15,
    "content": 0.03,
}
# \Z, not $: "$" also matches before a final newline, which would let an id carry "\n" into a header or a file name
_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}\Z")
_OFFER_FIELDS = {
    "id",
    "name",
    "kind",
    "goal",
    "reason",
    "target_categories",
    "target_items",
    "value",
    "value_clv_share",
    "cost",
    "contact_cost",
    "channels",
    "valid_from",
    "valid_to",
    "max_per_customer",
    "max_redemptions",
    "max_spend",
    "max_contacts",
    "lever",
    "eligibility",
    "base_rate",
    "policy",
}
_POLICY_FIELDS = {"max_per_channel", "period_days", "cooldown_days", "suppress_days", "max_offers_per_customer"}


@dataclass(frozen=True)
class ContactPolicy:
    """Contact limits: impressions per customer per channel per period, cooldown after dismissal, suppression after
    redemption."""

    max_per_channel: Mapping[str, int] = field(default_factory=lambda: {"web": 3, "app": 3, "email": 1, "push": 1})
    period_days: int = 7
    cooldown_days: int = 14
    suppress_days: int = 90
    max_offers_per_customer: int = 3

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "max_per_channel": dict(self.max_per_channel),
            "period_days": self.period_days,
            "cooldown_days": self.cooldown_days,
            "suppress_days": self.suppress_days,
            "max_offers_per_customer": self.max_offers_per_customer,
        }


@dataclass(frozen=True)
class Offer:
    """One validated offer. ``eligibility`` is already parsed and type-checked."""

    id: str
    name: str
    kind: str
    channels: tuple[str, ...]
    value: Decimal
    cost: Decimal = Decimal(0)
    contact_cost: Decimal = Decimal(0)
    value_clv_share: float = 0.0
    goal: str | None = None
    reason: str = ""
    target_categories: tuple[str, ...] = ()
    target_items: tuple[str, ...] = ()
    valid_from: dt.datetime | None = None
    valid_to: dt.datetime | None = None
    max_per_customer: int = 1
    max_redemptions: int | None = None
    max_spend: Decimal | None = None
    max_contacts: int | None = None
    lever: float = 1.0
    base_rate: float = 0.05
    eligibility: Expression | None = None
    policy: ContactPolicy = field(default_factory=ContactPolicy)

    def is_valid_at(self, when: dt.datetime) -> bool:
        """Return whether ``when`` (tz-aware) lies in the validity window."""
        return (self.valid_from is None or when >= self.valid_from) and (self.valid_to is None or when < self.valid_to)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (as written to ``offers.json``): money as strings, times as ISO 8601 UTC."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "goal": self.goal,
            "reason": self.reason,
            "channels": list(self.channels),
            "value": str(self.value),
            "cost": str(self.cost),
            "contact_cost": str(self.contact_cost),
            "value_clv_share": self.value_clv_share,
            "target_categories": list(self.target_categories),
            "target_items": list(self.target_items),
            "valid_from": self.valid_from.isoformat() if self.valid_from else None,
            "valid_to": self.valid_to.isoformat() if self.valid_to else None,
            "max_per_customer": self.max_per_customer,
            "max_redemptions": self.max_redemptions,
            "max_spend": str(self.max_spend) if self.max_spend is not None else None,
            "max_contacts": self.max_contacts,
            "lever": self.lever,
            "base_rate": self.base_rate,
            "eligibility": self.eligibility.source if self.eligibility else None,
            "policy": self.policy.to_dict(),
        }


@dataclass(frozen=True)
class Catalog:
    """A validated catalog: offers (unique ids), the default contact policy and experiments."""

    offers: tuple[Offer, ...]
    policy: ContactPolicy
    experiments: tuple[Experiment, ...] = ()
    source: str = "<memory>"

    def offer(self, offer_id: str) -> Offer:
        """Return one offer; raises ``KeyError`` when absent."""
        for offer in self.offers:
            if offer.id == offer_id:
                return offer
        raise KeyError(offer_id)


def load_catalog(path: Path) -> Catalog:
    """Read and validate a TOML offer catalog; raises ``ConfigError`` naming the file, offer, field and value."""
    path = Path(path)
    data = read_toml(path, "offer catalog not found; pass --offers FILE (see examples/offers.toml)")
    return catalog_from_dict(data, str(path))


def catalog_from_dict(data: Mapping[str, Any], source: str = "<memory>") -> Catalog:
    """Validate an already-parsed catalog mapping (``offer``, ``policy``, ``experiment`` tables)."""
    unknown = set(data) - {"offer", "policy", "experiment"}
    if unknown:
        raise ConfigError(
            f"{source}: unknown top-level table(s) {sorted(unknown)}; allowed: [[offer]], [policy], [[experiment]]"
        )
    policy = _policy(data.get("policy", {}), ContactPolicy(), f"{source}: [policy]")
    raw_offers = data.get("offer")
    if not isinstance(raw_offers, list) or not raw_offers:
        raise ConfigError(f"{source}: no offers; add at least one [[offer]] table")
    offers: list[Offer] = []
    for i, raw in enumerate(raw_offers):
        offer = _offer(raw, policy, f"{source}: offer #{i + 1}")
        if any(o.id == offer.id for o in offers):
            raise ConfigError(f"{source}: offer id {offer.id!r} appears twice; ids must be unique")
        offers.append(offer)
    experiments = tuple(experiment_from_dict(e, source) for e in data.get("experiment", []))
    ids = {o.id for o in offers}
    for exp in experiments:
        missing = [o for o in exp.offers if o not in ids]
        if missing:
            raise ConfigError(f"{source}: experiment {exp.id!r} names unknown offer(s) {missing}")
    if len({e.id for e in experiments}) != len(experiments):
        raise ConfigError(f"{source}: experiment ids must be unique")
    return Catalog(tuple(offers), policy, experiments, source)


def _offer(raw: Any, policy: ContactPolicy, where: str) -> Offer:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a table")
    offer_id = raw.get("id")
    if not isinstance(offer_id, str) or not _ID_RE.match(offer_id):
        raise ConfigError(f"{where}: 'id' must be 1-64 letters, digits or _.-; got {offer_id!r}")
    where = f"{where.rsplit(': ', 1)[0]}: offer {offer_id!r}"
    unknown = set(raw) - _OFFER_FIELDS
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {', '.join(sorted(_OFFER_FIELDS))}")
    kind = _choice(raw, "kind", KINDS, where, required=True)
    goal = _choice(raw, "goal", tuple(GOALS), where)
    channels = tuple(_str_list(raw, "channels", where, default=["app", "web"]))
    bad = [c for c in channels if c not in CHANNELS]
    if bad or not channels:
        raise ConfigError(
            f"{where}: 'channels' = {list(channels)!r}; each must be one of {list(CHANNELS)} and at least one is needed"
        )
    rule = raw.get("eligibility")
    if rule is None and goal:
        rule = GOALS[goal].eligibility
    eligibility = parse(rule, where=f"{where}: eligibility") if rule is not None else None
    valid_from, valid_to = _time(raw, "valid_from", where), _time(raw, "valid_to", where)
    if valid_from and valid_to and valid_to <= valid_from:
        raise ConfigError(
            f"{where}: 'valid_to' ({valid_to.isoformat()}) must be after 'valid_from' ({valid_from.isoformat()})"
        )
    reason = raw.get("reason", GOALS[goal].reason if goal else raw.get("name", offer_id))
    if not isinstance(reason, str):
        raise ConfigError(f"{where}: 'reason' must be a string, got {reason!r}")
    name = raw.get("name", offer_id)
    if not isinstance(name, str):
        raise ConfigError(f"{where}: 'name' must be a string, got {name!r}")
    return Offer(
        id=offer_id,
        name=name,
        kind=kind,
        channels=channels,
        goal=goal,
        reason=reason,
        value=_money(raw, "value", where, required=True),
        cost=_money(raw, "cost", where) or Decimal(0),
        contact_cost=_money(raw, "contact_cost", where) or Decimal(0),
        value_clv_share=_number(raw, "value_clv_share", where, 0.0, 0.0, 1.0),
        target_categories=tuple(_str_list(raw, "target_categories", where)),
        target_items=tuple(_str_list(raw, "target_items", where)),
        valid_from=valid_from,
        valid_to=valid_to,
        max_per_customer=_positive(raw, "max_per_customer", where, 1),
        max_redemptions=_int(raw, "max_redemptions", where, None),
        max_spend=_money(raw, "max_spend", where),
        max_contacts=_int(raw, "max_contacts", where, None),
        lever=_number(raw, "lever", where, 1.0, 0.0, 1000.0, open_low=True),
        base_rate=_number(raw, "base_rate", where, BASE_RATES[kind], 0.0, 1.0, open_low=True),
        eligibility=eligibility,
        policy=_policy(raw.get("policy", {}), policy, f"{where}: policy"),
    )


def _policy(raw: Any, base: ContactPolicy, where: str) -> ContactPolicy:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a table")
    unknown = set(raw) - _POLICY_FIELDS
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {', '.join(sorted(_POLICY_FIELDS))}")
    caps = dict(base.max_per_channel)
    given = raw.get("max_per_channel", {})
    if not isinstance(given, Mapping):
        raise ConfigError(f"{where}: 'max_per_channel' must be a table like {{app = 3, email = 1}}")
    for channel, cap in given.items():
        if channel not in CHANNELS or isinstance(cap, bool) or not isinstance(cap, int) or not 0 <= cap <= 1000:
            raise ConfigError(
                f"{where}: max_per_channel.{channel} = {cap!r}; channel must be one of {list(CHANNELS)}, cap an "
                f"integer 0..1000"
            )
        caps[channel] = cap
    values: dict[str, Any] = {
        name: _int(raw, name, where, getattr(base, name))
        for name in ("period_days", "cooldown_days", "suppress_days", "max_offers_per_customer")
    }
    return replace(base, max_per_channel=caps, **values)


def _choice(raw: Mapping[str, Any], name: str, allowed: tuple[str, ...], where: str, *, required: bool = False) -> Any:
    value = raw.get(name)
    if value is None and not required:
        return None
    if value not in allowed:
        raise ConfigError(f"{where}: '{name}' = {value!r}; must be one of {list(allowed)}")
    return value


def _str_list(raw: Mapping[str, Any], name: str, where: str, default: list[str] | None = None) -> list[str]:
    value = raw.get(name, default if default is not None else [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value) or len(value) > 10_000:
        raise ConfigError(f"{where}: '{name}' must be a list of non-empty strings, got {value!r:.80}")
    return value


@overload
def _money(raw: Mapping[str, Any], name: str, where: str, *, required: Literal[True]) -> Decimal: ...
@overload
def _money(raw: Mapping[str, Any], name: str, where: str, *, required: bool = False) -> Decimal | None: ...
def _money(raw: Mapping[str, Any], name: str, where: str, *, required: bool = False) -> Decimal | None:
    value = raw.get(name)
    if value is None:
        if required:
            raise ConfigError(
                f"{where}: '{name}' is required (expected margin or revenue if accepted, in currency units)"
            )
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"{where}: '{name}' must be an amount like 12.50, got {value!r}")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{where}: '{name}' must be an amount like 12.50, got {value!r}") from None
    if not amount.is_finite() or amount < 0 or amount > Decimal(10) ** 12:
        raise ConfigError(f"{where}: '{name}' = {value!r}; must be between 0 and 1e12")
    return amount.quantize(Decimal("0.01"))


def _positive(raw: Mapping[str, Any], name: str, where: str, default: int) -> int:
    value = _int(raw, name, where, default)
    if not value:
        raise ConfigError(
            f"{where}: '{name}' must be at least 1, got {value!r} (to stop an offer, set valid_to or remove it)"
        )
    return value


def _int(raw: Mapping[str, Any], name: str, where: str, default: int | None) -> int | None:
    value = raw.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**12:
        raise ConfigError(f"{where}: '{name}' must be a whole number >= 0, got {value!r}")
    return value


def _number(
    raw: Mapping[str, Any], name: str, where: str, default: float, low: float, high: float, *, open_low: bool = False
) -> float:
    value = raw.get(name, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (low < value if open_low else low <= value)
        or value > high
    ):
        bound = f"({low}, {high}]" if open_low else f"[{low}, {high}]"
        raise ConfigError(f"{where}: '{name}' must be a number in {bound}, got {value!r}")
    return float(value)


def _time(raw: Mapping[str, Any], name: str, where: str) -> dt.datetime | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ConfigError(
                f"{where}: '{name}' = {value.isoformat()} has no time zone; write it like 2025-01-01T00:00:00Z"
            )
        return value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    raise ConfigError(f"{where}: '{name}' must be a TOML date or datetime like 2025-01-01T00:00:00Z, got {value!r}")
