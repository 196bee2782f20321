"""Names to domain classes: the only place a domain is looked up by name."""

from __future__ import annotations

from ..errors import UserError
from .base import Domain
from .latents import check_domain_name

DOMAINS: dict[str, type[Domain]] = {}


def register_domain(cls: type[Domain]) -> type[Domain]:
    """Class decorator that makes a domain available to `gw pretrain --domains`; its kind names its
    folder, so it must be a plain name, and one no other class has (a plugin of kind `v` silently
    replaced the image specialist, whose folders it then could not read)."""
    kind = check_domain_name(cls.kind, f"rename the kind of {cls.__name__}")
    held = DOMAINS.get(kind)
    if held is not None and _name(held) != _name(cls):  # the same class imported again is no clash
        raise UserError(
            f"domain kind {kind!r} of {_name(cls)} is already registered by {_name(held)}; give "
            f"{cls.__name__} a kind of its own"
        )
    DOMAINS[kind] = cls
    return cls


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def domain_class(kind: str) -> type[Domain]:
    if kind not in DOMAINS:
        raise UserError(
            f"unknown domain {kind!r}; known domains: {', '.join(sorted(DOMAINS))}; a domain of your own "
            "is known once its module is imported (`gw --plugin MODULE`, or `import MODULE` in Python)"
        )
    return DOMAINS[kind]
