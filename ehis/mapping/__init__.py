"""What several sources share: canonical models (models.py) and request parameter models (queries.py)."""
