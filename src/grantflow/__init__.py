"""grantflow: a self-hosted role-granting workflow engine, wire-compatible with PrivX."""

__version__ = "0.1.0"
