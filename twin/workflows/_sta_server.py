"""A local OGC SensorThings API 1.1 server for the demo: django-ogc-sensorthings on SQLite under uvicorn.

Run as ``python -m twin.workflows._sta_server --port PORT --db FILE``; it migrates the database and serves
``http://127.0.0.1:PORT/sensorthings/v1.1/`` until it is terminated. The Django settings are made in code
(no project folder), so nothing is written outside ``--db``. django-ogc-sensorthings comes with
``pip install 'twin[test]'`` (``make`` installs it); the sensor tests start the same server
(``tests/sensors/servers.py``).
"""

from __future__ import annotations

import argparse
import sys
import uuid


def configure(db: str, port: int, max_top: int = 100) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="twin-demo-local-only",
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "sensorthings.versions.v1_1",
            "sensorthings.versions.v1_1.backends.django",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": db, "OPTIONS": {"timeout": 20}}},
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        SENSORTHINGS_V1_1_BACKEND_ADAPTER="sensorthings.versions.v1_1.backends.django.adapter.DjangoBackendAdapter",
        SENSORTHINGS_V1_1_SERVICE_URL=f"http://127.0.0.1:{port}/sensorthings",
        SENSORTHINGS_V1_1_DOCS_ENABLED=False,
        SENSORTHINGS_V1_1_MAX_TOP=max_top,
        SENSORTHINGS_V1_1_ID_TYPE=uuid.UUID,
        SENSORTHINGS_V1_1_ID_DELIMITER="'",
        LOGGING_CONFIG=None,
    )
    django.setup()


def _urlpatterns():
    from django.urls import include, path

    return [path("sensorthings/", include("sensorthings.versions.v1_1.urls"))]


def __getattr__(name):  # ROOT_URLCONF reads urlpatterns lazily, after configure()
    if name == "urlpatterns":
        return _urlpatterns()
    raise AttributeError(name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m twin.workflows._sta_server")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--max-top", type=int, default=100)
    args = ap.parse_args(argv)
    configure(args.db, args.port, args.max_top)
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    import uvicorn
    from django.core.asgi import get_asgi_application

    uvicorn.run(get_asgi_application(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
