"""Dashboard: products (placeholder blueprint; its helper fills it in)."""
from flask import Blueprint

bp = Blueprint("products", __name__)
