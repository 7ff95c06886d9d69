"""/healthz. Placeholder: the scheduler helper fills this in."""
from flask import Blueprint

bp = Blueprint("health", __name__)
