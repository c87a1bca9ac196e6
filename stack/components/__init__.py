"""The components of a local stack, one module each (see :mod:`stack.components.base`)."""
