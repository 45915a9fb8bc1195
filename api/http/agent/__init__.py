"""The agent console: its page, REST API and real-time events (session cookie + CSRF header)."""
