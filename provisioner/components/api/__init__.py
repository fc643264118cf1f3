"""components/api."""
