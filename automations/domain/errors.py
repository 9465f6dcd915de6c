"""The domain's exception hierarchy: every service raises one of these."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager


class DomainError(Exception):
    """Base of every error the domain layer raises on purpose."""


class ValidationError(DomainError):
    """Bad input. `errors` maps each field (dotted path, e.g. `steps.2.body`) to its
    problem, in plain words a user can act on ("Too long: 230 characters, at most 200.")."""

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{field}: {problem}" for field, problem in self.errors.items()))

    @classmethod
    def single(cls, field: str, problem: str) -> ValidationError:
        return cls({field: problem})


class Problems:
    """The problems found by the successive checks of one input (its schema, its
    templates, uniqueness, checks across fields), raised together so that a user
    fixes them all in one go. The first problem found for a field is kept."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def add(self, field: str, problem: str) -> None:
        self.errors.setdefault(field, problem)

    def merge(self, errors: Mapping[str, str]) -> None:
        for field, problem in errors.items():
            self.add(field, problem)

    @contextmanager
    def gather(self) -> Iterator[None]:
        """Record the `ValidationError` the block raises instead of letting it out."""
        try:
            yield
        except ValidationError as exc:
            self.merge(exc.errors)

    def __contains__(self, field: object) -> bool:
        return field in self.errors

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


class NotFound(DomainError):
    """An id that names nothing."""

    def __init__(self, entity: str, ident: object):
        self.entity = entity
        self.ident = ident
        super().__init__(f"{entity} {ident} does not exist")


class Conflict(DomainError):
    """A state change that is not allowed (resuming a canceled campaign, editing a system template)."""
