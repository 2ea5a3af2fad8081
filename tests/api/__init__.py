"""Tests of twin.api (FastAPI test client, a real process pool, a real uvicorn server for the CLI)."""
