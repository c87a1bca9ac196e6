"""Alembic environment of the history store.

The store runs the migrations itself (:func:`resilience.history.store.HistoryStore.open`), handing
its connection over in ``config.attributes["connection"]``; ``alembic -x url=...`` style use works
too, from ``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from resilience.history.models import Base

config = context.config
target_metadata = Base.metadata


def run_offline() -> None:
    """Emit the SQL of the migrations instead of running them (``alembic upgrade head --sql``)."""
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run the migrations on the store's connection (or one made from ``sqlalchemy.url``)."""
    connection = config.attributes.get("connection")
    if connection is None:
        engine = create_engine(str(config.get_main_option("sqlalchemy.url")))
        with engine.begin() as conn:
            context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
        return
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
