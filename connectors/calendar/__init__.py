"""Calendar connectors: iCalendar (RFC 5545/5546) building and CalDAV publishing."""
