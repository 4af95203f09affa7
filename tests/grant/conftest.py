"""The SMTP sink fixture, for the scheduler tests that check the mails grants cause."""

from tests.notification.smtp_servers import start_server

__all__ = ["start_server"]
