"""The SMTP server fixtures of smtp_servers.py, for every test in this package."""

from tests.notification.smtp_servers import pki, start_server, token_endpoint

__all__ = ["pki", "start_server", "token_endpoint"]
