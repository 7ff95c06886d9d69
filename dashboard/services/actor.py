"""Who is acting: a staff member, a storefront API client, or the system."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    kind: str  # "staff" | "api" | "system"
    id: int | None = None
    name: str = "system"
    # An API client an admin granted every storefront's records (ApiClient.all_storefronts).
    all_storefronts: bool = False

    @classmethod
    def staff(cls, user) -> Actor:
        return cls("staff", user.id, user.name)

    @classmethod
    def api(cls, client) -> Actor:
        return cls("api", client.id, client.name, bool(client.all_storefronts))

    @property
    def staff_id(self) -> int | None:
        return self.id if self.kind == "staff" else None

    @property
    def api_client_id(self) -> int | None:
        return self.id if self.kind == "api" else None

    def reaches(self, storefront_id: int | None) -> bool:
        """Whether this actor may see and act on a record of that storefront (an API client
        id, or None for staff-made records): staff and the system reach everything, a
        storefront only its own records unless granted every storefront."""
        return self.kind != "api" or self.all_storefronts or storefront_id == self.id

    def __str__(self) -> str:
        return self.name


SYSTEM = Actor("system")
