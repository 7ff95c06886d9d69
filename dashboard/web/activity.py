"""Dashboard: activity (placeholder blueprint; its helper fills it in)."""
from flask import Blueprint

bp = Blueprint("activity", __name__)
