"""Dashboard: admin (placeholder blueprint; its helper fills it in)."""
from flask import Blueprint

bp = Blueprint("admin", __name__)
