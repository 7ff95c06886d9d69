"""Dashboard: auth (placeholder blueprint; its helper fills it in)."""
from flask import Blueprint

bp = Blueprint("auth", __name__)
