"""Migrate the configured database to the newest schema: ``python -m store.migrate``."""

from __future__ import annotations

import logging

from config import get_settings
from store.db import migrate

logger = logging.getLogger(__name__)


def main() -> None:
    settings = get_settings()
    migrate(settings.sqlalchemy_url)
    logger.info("Database schema is up to date")


if __name__ == "__main__":
    main()
