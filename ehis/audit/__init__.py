"""The exchange log (hash-chained, one record per exchange) and the outage record of sources."""
