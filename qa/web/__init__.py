"""The HTML pages and the embeddable widget, served by the same app as the JSON API."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from qa.web.templating import STATIC_DIR
from qa.web.views import ask, documents, embed, trials


def install_web(app: FastAPI) -> None:
    """Mount /static and include one router per page."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for view in (ask, documents, trials, embed):
        app.include_router(view.router)
