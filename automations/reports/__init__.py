"""The read side: what the dashboard, the REST API and the exports show (SQL aggregation, pagination)."""
