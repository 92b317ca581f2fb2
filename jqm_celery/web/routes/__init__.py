"""The web app's routers: one module per area (pages), and ``api`` for the REST API."""
