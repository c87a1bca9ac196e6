"""What the suite is pointed at: one settings model for every layer above the stack (see settings.py)."""
