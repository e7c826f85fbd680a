"""Tables and transactions (SQLAlchemy Core); knows nothing of procedure rules."""
