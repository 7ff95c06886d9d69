"""Dashboard: overview (placeholder blueprint; its helper fills it in)."""
from flask import Blueprint

bp = Blueprint("overview", __name__)
