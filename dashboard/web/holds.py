"""Dashboard: holds (placeholder blueprint; its helper fills it in)."""
from flask import Blueprint

bp = Blueprint("holds", __name__)
