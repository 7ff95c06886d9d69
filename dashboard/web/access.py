"""Who may do what (SPEC §5), checked on the server for every action."""
from __future__ import annotations

import functools

from flask import abort
from flask_login import current_user, login_required

# permission -> roles that have it; "see everything" needs only a signed-in staff member.
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "edit_stock": ("merchandiser", "manager", "admin"),  # adjust, count, import, products
    "move_stock": ("merchandiser", "manager", "admin"),  # transfers between locations
    "manage_holds": ("support", "manager", "admin"),  # release, extend
    "manage_alerts": ("manager", "admin"),  # acknowledge, resolve
    "run_jobs": ("manager", "admin"),  # run a job now, reconcile repair
    "manage_staff": ("admin",),  # staff and API clients
    "manage_locations": ("admin",),  # add, change, close, reopen, make default
    "own_account": ("viewer", "merchandiser", "support", "manager", "admin"),  # password, sessions
}

FORBIDDEN_MESSAGES = {
    "edit_stock": "Only merchandisers, managers and admins can change stock.",
    "move_stock": "Only merchandisers, managers and admins can move stock between locations.",
    "manage_holds": "Only support staff, managers and admins can release or extend holds.",
    "manage_alerts": "Only managers and admins can acknowledge or resolve alerts.",
    "run_jobs": "Only managers and admins can run jobs or repair drift.",
    "manage_staff": "Only admins can manage staff and API clients.",
    "manage_locations": "Only admins can add, change or close locations.",
    "own_account": "Sign in to manage your account.",
}


def can(permission: str) -> bool:
    return current_user.is_authenticated and current_user.role in PERMISSIONS[permission]


def require(permission: str):
    """View decorator: signed in, and the role has `permission`, else 403 with a message."""
    if permission not in PERMISSIONS:
        raise KeyError(permission)

    def decorator(view):
        @functools.wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not can(permission):
                abort(403, description=FORBIDDEN_MESSAGES[permission])
            return view(*args, **kwargs)

        return wrapped

    return decorator
