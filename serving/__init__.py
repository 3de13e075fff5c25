"""The FastAPI service. Build the app with ``serving.app.create_app()``; nothing happens at import."""
