"""Domain errors. Raised in the library; turned into HTTP responses or CLI messages in one place each."""

from __future__ import annotations


class CentricError(Exception):
    """Base class of every error Centric raises on purpose. ``str(err)`` is a message a user can act on."""


class DataError(CentricError):
    """A whole input file cannot be used (missing, empty, wrong columns, wrong format)."""


class ConfigError(CentricError):
    """A configuration or definition file (program, offers, settings) is invalid."""


class ArtifactError(CentricError):
    """A saved artifact is missing, corrupt, or of an unknown schema version."""


class NotFound(CentricError):
    """Base for lookups of something that does not exist."""


class UnknownCustomer(NotFound):
    """The customer id is not known to the active snapshot or ledger."""


class UnknownItem(NotFound):
    """The item id is not known to the active snapshot."""


class UnknownReward(NotFound):
    """The reward id is not in the loyalty program's catalog."""


class UnknownOffer(NotFound):
    """The offer id is not in the offer catalog."""


class Conflict(CentricError):
    """A write cannot be applied as asked (balance, stock, idempotency)."""


class InsufficientPoints(Conflict):
    """A redemption would overdraw the customer's balance; nothing was changed."""


class OutOfStock(Conflict):
    """The reward has no stock left; nothing was changed."""


class RewardUnavailable(Conflict):
    """The reward exists but not for this customer's tier, or not at this time; nothing was changed."""


class OfferExhausted(Conflict):
    """The offer's budget is spent; it is no longer served."""


class IdempotencyConflict(Conflict):
    """An idempotency key was reused with a different payload."""


class DuplicateGrantCustomer(IdempotencyConflict, DataError):
    """A bulk grant lists a customer twice: both lines would apply under the same key ``<key>:<customer>``.

    A conflict (HTTP 409), since the input is well-formed but its lines collide on one idempotency key (a JSON schema
    cannot state "unique by customer_id"); also a ``DataError`` for callers that catch bad input as such.
    """


class BatchTooLarge(CentricError):
    """A request carries more events, order lines or grant lines than the service's batch limit (413)."""


class StoreUnavailable(CentricError):
    """The store (Redis) cannot be reached."""


class NoActiveSnapshot(CentricError):
    """No snapshot has been published and activated yet."""
