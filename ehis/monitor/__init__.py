"""Operators' view of a hub: Prometheus metrics, health probes and the admin page."""

from ehis.monitor.metrics import HubMetrics
from ehis.monitor.server import parse_listen, serve_admin
from ehis.monitor.web import AdminProvider, create_admin_app

__all__ = ["AdminProvider", "HubMetrics", "create_admin_app", "parse_listen", "serve_admin"]
