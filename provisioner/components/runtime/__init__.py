"""components/runtime."""
