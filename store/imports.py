"""Tables that record contact imports: one row per file, and its contacts.

Importing this module registers the tables on `SQLModel.metadata`, next to the
ones in `store.models`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from store.models import utcnow
from store.types import UtcDateTime


class ContactImport(SQLModel, table=True):
    """One imported file, with its counts and the rows that were rejected."""

    __tablename__ = "contact_import"

    id: int | None = Field(default=None, primary_key=True)
    filename: str
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime())
    )
    # Stays NULL when the import stopped part way, for example on a database
    # error after some batches were committed.
    finished_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )
    # Non-blank data rows in the file.
    rows_total: int = 0
    contacts_created: int = 0
    contacts_updated: int = 0
    duplicates: int = 0
    rejected: int = 0
    # [{"row": 7, "reason": "...", "value": "..."}, ...] in file order.
    rejected_rows: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON)
    )


class ImportContact(SQLModel, table=True):
    """Links an import to every contact that its file named."""

    __tablename__ = "import_contact"

    import_id: int = Field(
        foreign_key="contact_import.id", primary_key=True, ondelete="CASCADE"
    )
    contact_id: int = Field(
        foreign_key="contact.id", primary_key=True, index=True, ondelete="CASCADE"
    )
