"""Dashboard: stock (placeholder blueprint; its helper fills it in)."""
from flask import Blueprint

bp = Blueprint("stock", __name__)
