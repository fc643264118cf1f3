"""components/dns."""
