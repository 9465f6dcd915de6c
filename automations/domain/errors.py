"""The domain's exception hierarchy: every service raises one of these."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain layer raises on purpose."""


class ValidationError(DomainError):
    """Bad input. `errors` maps each field (dotted path, e.g. `steps.2.body`) to its problem."""

    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{field}: {problem}" for field, problem in self.errors.items()))

    @classmethod
    def single(cls, field: str, problem: str) -> ValidationError:
        return cls({field: problem})


class NotFound(DomainError):
    """An id that names nothing."""

    def __init__(self, entity: str, ident: object):
        self.entity = entity
        self.ident = ident
        super().__init__(f"{entity} {ident} does not exist")


class Conflict(DomainError):
    """A state change that is not allowed (resuming a canceled campaign, editing a system template)."""
