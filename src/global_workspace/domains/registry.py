"""Names to domain classes: the only place a domain is looked up by name."""

from __future__ import annotations

from ..errors import UserError
from .base import Domain
from .latents import check_domain_name

DOMAINS: dict[str, type[Domain]] = {}


def register_domain(cls: type[Domain]) -> type[Domain]:
    """Class decorator that makes a domain available to `gw pretrain --domains`; its kind names its
    folder, so it must be a plain name."""
    DOMAINS[check_domain_name(cls.kind, f"rename the kind of {cls.__name__}")] = cls
    return cls


def domain_class(kind: str) -> type[Domain]:
    if kind not in DOMAINS:
        raise UserError(
            f"unknown domain {kind!r}; known domains: {', '.join(sorted(DOMAINS))}; a domain of your own "
            "is known once its module is imported (`gw --plugin MODULE`, or `import MODULE` in Python)"
        )
    return DOMAINS[kind]
