"""Dashboard: jobs (placeholder blueprint; its helper fills it in)."""
from flask import Blueprint

bp = Blueprint("jobs", __name__)
