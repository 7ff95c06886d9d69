from dashboard import services
from dashboard.services import SYSTEM, Owner


def test_reserve_and_release_leave_ledger_and_check_clean(product_factory, now):
    product = product_factory(on_hand=5)
    hold = services.reserve(product.sku, 2, Owner(session_key="abc"), now=now)
    assert hold.status == "active"
    services.release(hold.id, actor=SYSTEM, reason="test", now=now)
    assert services.check() == []
