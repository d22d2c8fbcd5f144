"""Canonical models, and one module per source mapping its answer into them."""
