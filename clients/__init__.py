"""Client-side helpers for the stores and brokers the suite reads (no dependency on the rest of the suite)."""
