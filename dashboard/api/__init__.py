"""Storefront JSON API (SPEC §7). Placeholder: the API helper fills this in."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")
