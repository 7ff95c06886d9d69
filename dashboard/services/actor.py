"""Who is acting: a staff member, a storefront API client, or the system."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    kind: str  # "staff" | "api" | "system"
    id: int | None = None
    name: str = "system"

    @classmethod
    def staff(cls, user) -> Actor:
        return cls("staff", user.id, user.email)

    @classmethod
    def api(cls, client) -> Actor:
        return cls("api", client.id, client.name)

    @property
    def staff_id(self) -> int | None:
        return self.id if self.kind == "staff" else None

    @property
    def api_client_id(self) -> int | None:
        return self.id if self.kind == "api" else None

    def __str__(self) -> str:
        return self.name


SYSTEM = Actor("system")
