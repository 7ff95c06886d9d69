"""The staff dashboard: one blueprint per page (auth, overview, stock, products, transfers,
holds, alerts, activity, jobs, admin) plus the modules they share: forms, htmx answers, access
rules, navigation, the chart, and the app-wide sign-in plumbing, error pages, security
headers and template filters wired here. Views parse the request, call a query
(dashboard/queries/) or a service, and render; no view touches the database session."""
from __future__ import annotations

from flask import Flask

from . import errors, filters, headers, login, once, requests


def init_app(app: Flask) -> None:
    requests.init_converters(app)
    from . import (account, activity, admin, alerts, auth, catalogue, holds, jobs, locations,
                   notifications, overview, products, stock, transfers)

    # catalogue before products: /products/new and /products/<sku>/edit are not product pages.
    for module in (auth, account, overview, stock, catalogue, products, transfers, holds,
                   alerts, activity, jobs, admin, locations, notifications):
        app.register_blueprint(module.bp)
    for plumbing in (requests, login, errors, headers, filters, once):
        plumbing.init_app(app)
