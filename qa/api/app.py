"""Application factory: state is created in the lifespan and handed to routes through dependencies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from qa import __version__
from qa.api.docs import document_errors, install_docs
from qa.api.errors import install_error_handlers
from qa.api.follow import BuildFollower
from qa.api.limits import install_limits
from qa.api.observability import install_observability
from qa.api.routes import ask, documents, facts, health, library, search
from qa.api.routes.admin import install_admin
from qa.api.security import install_security
from qa.logging_setup import configure_logging
from qa.services import Services
from qa.settings import Settings, get_settings
from qa.web import install_web


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    """Build the app; ``services`` lets tests and the CLI hand in components they already loaded."""
    settings = settings or (services.settings if services else get_settings())
    configure_logging(settings.log_level, settings.log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = services or Services.start(settings)
        follower = BuildFollower(app, settings.index_poll_seconds)
        follower.start()
        yield
        follower.stop()
        if services is None:
            app.state.services.close()
        app.state.services = None

    app = FastAPI(
        title="qa: cited answers from cancer-immunotherapy papers",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # served offline and without inline script by install_docs
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.services = None
    install_error_handlers(app)
    install_limits(app, settings)  # inside observability, so refusals are logged and counted
    install_observability(app)
    install_security(app, settings)  # outermost: headers on every response
    # Routes are tried in order: the question route first, because it is the one under load and every route
    # tried before it is matched against each of its requests; then the others.
    app.include_router(ask.router)
    install_docs(app)
    document_errors(app)
    install_admin(app)
    app.include_router(health.router)
    app.include_router(search.router)
    app.include_router(documents.router)
    app.include_router(library.router)
    app.include_router(facts.router)
    install_web(app)  # HTML pages and /static, after the API routes
    return app


def app_from_environment() -> FastAPI:
    """Factory for `qa serve`: the CLI passes its resolved settings through the environment to workers."""
    import os

    raw = os.environ.get("QA_SERVE_SETTINGS")
    return create_app(Settings.model_validate_json(raw) if raw else None)
