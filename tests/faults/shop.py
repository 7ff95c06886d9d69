"""The shop the fault load runs against, made before any fault: migrated by the app's own
`db upgrade`, staff and API clients made by its commands, products (each opening stock a
ledger line) and carts (the storefront's records) by the test's own SQL."""
from __future__ import annotations

import json
import random
import secrets
import subprocess
from dataclasses import dataclass, field

from .cluster import Cluster
from .processes import ROOT, VENV_BIN

STAFF_ROLES = ("merchandiser", "support", "manager")
HOT, COLD = 4, 36
HOT_STOCK, COLD_STOCK = 24, 400
CARTS = 600        # for the storefront's cart reserves, one logical request each
STAFF_SINGLES = 100  # holds of one session each, released one by one by staff
STAFF_GROUPS = 50    # carts of three lines, their holds released together by staff


@dataclass
class Product:
    id: int
    sku: str
    hot: bool


@dataclass
class Shop:
    tokens: list[str]
    staff: dict[str, tuple[str, str]]  # role -> (email, password)
    products: list[Product]
    carts: dict[int, int] = field(default_factory=dict)  # cart id -> number of lines
    staff_carts: list[int] = field(default_factory=list)

    @property
    def hot(self) -> list[Product]:
        return [p for p in self.products if p.hot]

    @property
    def cold(self) -> list[Product]:
        return [p for p in self.products if not p.hot]


# The app's own commands (`flask --app wsgi ...`), run in one interpreter: on a busy
# machine each `flask` start-up costs seconds, and the commands are only its CLI.
_COMMANDS = """
import json, sys
from wsgi import app
runner = app.test_cli_runner()
answers = []
for args, stdin in json.loads(sys.stdin.read()):
    result = runner.invoke(args=args, input=stdin)
    answers.append([result.exit_code, result.output + (repr(result.exception) if result.exit_code else "")])
print("\\n" + json.dumps(answers))
"""


def flask_commands(env: dict, commands: list[tuple[list[str], str | None]]) -> list[str]:
    """Outputs of `flask --app wsgi <args>` for each command, in order; any failure raises."""
    done = subprocess.run([str(VENV_BIN / "python"), "-c", _COMMANDS], cwd=ROOT, env=env,
                          input=json.dumps(commands), capture_output=True, text=True, timeout=300)
    try:
        answers = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"the app's commands failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    for (args, _), (code, output) in zip(commands, answers):
        if code != 0:
            raise RuntimeError(f"flask --app wsgi {' '.join(args)} failed ({code}):\n{output[-3000:]}")
    return [output for _, output in answers]


def make_shop(cluster: Cluster, env: dict, rng: random.Random, api_clients: int = 2) -> Shop:
    """The schema, staff and API clients by the app's commands; products and carts by SQL."""
    staff = {role: (f"fault-{role}@stockroom.example", secrets.token_urlsafe(18))
             for role in STAFF_ROLES}
    commands = [(["db", "upgrade"], None)]
    commands += [(["staff", "create", email, "--role", role, "--name", f"Fault {role}"], password + "\n")
                for role, (email, password) in staff.items()]
    # Every storefront's records: the carts below are made by SQL, with no storefront of their own.
    commands += [(["api-client", "create", f"fault storefront {n}", "--all-storefronts"], None)
                 for n in range(api_clients)]
    outputs = flask_commands(env, commands)
    tokens = [output.strip().splitlines()[-1].strip() for output in outputs[1 + len(staff):]]
    shop = Shop(tokens=tokens, staff=staff, products=_products(cluster))
    with cluster.connect() as conn, conn.transaction():
        shop.carts = {cart: len(lines) for cart, lines in (
            _cart(conn, rng.sample(shop.hot[:2] + shop.cold, rng.choice((1, 2))), rng)
            for _ in range(CARTS))}
        shop.staff_carts = [_cart(conn, rng.sample(shop.cold, 3), rng, quantity=1)[0]
                            for _ in range(STAFF_GROUPS)]
    return shop


def _products(cluster: Cluster) -> list[Product]:
    made = []
    with cluster.connect() as conn, conn.transaction():
        for n in range(HOT + COLD):
            hot = n < HOT
            sku, on_hand = (f"FLT-HOT-{n:02d}", HOT_STOCK) if hot else (f"FLT-COLD-{n:02d}", COLD_STOCK)
            product_id = conn.execute(
                "INSERT INTO products (sku, name, price, on_hand, reserved, low_stock_threshold,"
                " is_active, alert_muted, created_at, updated_at)"
                " VALUES (%s, %s, 9.99, %s, 0, %s, true, false, now(), now()) RETURNING id",
                (sku, f"Fault test {'hot' if hot else 'cold'} item {n}", on_hand, 6 if hot else 10),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO stock_levels (product_id, location_id, on_hand, reserved,"
                " product_threshold, product_is_active)"
                " SELECT p.id, l.id, %s, 0, p.low_stock_threshold, p.is_active"
                " FROM locations l, products p WHERE l.is_default AND p.id = %s",
                (on_hand, product_id),
            )
            conn.execute(
                "INSERT INTO stock_movements (product_id, location_id, kind, on_hand_delta,"
                " reserved_delta, on_hand_after, reserved_after, reason, created_at)"
                " SELECT %s, id, 'receive', %s, 0, %s, 0, 'opening stock (fault test)', now()"
                " FROM locations WHERE is_default",
                (product_id, on_hand, on_hand),
            )
            made.append(Product(product_id, sku, hot))
    return made


def _cart(conn, products: list[Product], rng: random.Random, quantity: int | None = None):
    cart_id = conn.execute("INSERT INTO carts (created_at, updated_at) VALUES (now(), now())"
                           " RETURNING id").fetchone()[0]
    for product in products:
        conn.execute("INSERT INTO cart_items (cart_id, product_id, quantity, added_at)"
                     " VALUES (%s, %s, %s, now())",
                     (cart_id, product.id, quantity or rng.randint(1, 2)))
    return cart_id, products
