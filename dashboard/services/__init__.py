"""The service layer: the only code that changes stock (SPEC §3).

Plain functions. Each public call is one transaction (`transaction`), takes the actor and
`now` as arguments, never touches the web request, and raises a typed refusal from `errors`.
Views, the API, the CLI and the scheduler all call these.

- stock: `holds` (reserve, reserve a cart, release, extend, commit), `orders` (confirm,
  cancel), `expiry` (overdue holds), `stock` (adjust, count, import), `products` (find,
  create, edit), `locations`, `transfers` (create, ship, receive, write off, cancel),
  `alerts`, `audit` (invariants, drift, repair);
- the catalogue: `catalogue` (upsert one or a batch: plan, then `catalogue_writes`),
  `catalogue_fields` (what each field may hold), `catalogue_csv` (product files read and
  written), `product_import` (the CSV import's dry run and apply);
- people: `staff` (accounts, API clients), `signin` (throttled sign-in), `sessions`
  (signed-in devices);
- the scheduler's work: `jobs` (the jobs, run once per slot), `job_runs` (their records and
  locks), `housekeeping` (pruning);
- notifications: `events` (the outbox, written with each change), `subscriptions` (who
  wants mail), `webhooks` (endpoints, the allow-list, signing), `delivery` (fan-out, claims,
  sends and retries, run by the scheduler), `mail` (SMTP);
- underneath: `ledger` (every counter move), `owners`, `limits`, `actor`, `errors`,
  `transaction` (the one commit/rollback helper).
"""
from .actor import SYSTEM, Actor
from .alerts import AlertChanges, acknowledge, evaluate_alerts, level_of, resolve
from . import subscriptions, webhooks  # notifications: staff choices, webhook endpoints
from .audit import Drift, check, reconcile, repair
from .expiry import ExpiryResult, expire_due
from .holds_pg import Remembered
from .holds import ReleaseResult, commit, extend, release, release_many, reserve, reserve_cart
from .orders import cancel_order, confirm_order
from .owners import Owner
from .products import create_product, find_product, update_product
from .sessions import (
    end_session, end_sessions, staff_for_session, start_session, why_session_ended,
)
from .staff import (
    change_own_password,
    client_for_token,
    create_api_client,
    create_staff,
    record_api_client_use,
    reset_password,
    set_api_client_active,
    set_api_client_storefronts,
    set_role,
    set_staff_active,
    verify_password,
)
from .stock import ImportReport, adjust, count, import_counts
from . import transfers  # ship, receive, write_off, cancel: services.transfers.ship(...)
from .transfers import create_transfer

__all__ = [
    "SYSTEM", "Actor", "AlertChanges", "Drift", "ExpiryResult", "ImportReport", "Owner",
    "ReleaseResult", "Remembered", "acknowledge", "adjust", "cancel_order",
    "change_own_password", "check",
    "client_for_token", "end_session", "end_sessions", "staff_for_session", "start_session",
    "why_session_ended",
    "commit", "confirm_order", "count", "create_api_client", "create_product", "create_staff",
    "create_transfer", "transfers",
    "evaluate_alerts", "expire_due", "extend", "find_product", "import_counts",
    "level_of", "reconcile", "record_api_client_use", "release", "release_many", "repair",
    "reserve", "reserve_cart", "reset_password", "resolve", "set_api_client_active", "set_api_client_storefronts",
    "set_role", "set_staff_active", "update_product", "verify_password",
]
