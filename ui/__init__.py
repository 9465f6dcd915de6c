"""Dashboard helpers shared by the router (app.py) and the pages."""
