"""Dashboard: alerts (placeholder blueprint; its helper fills it in)."""
from flask import Blueprint

bp = Blueprint("alerts", __name__)
