"""components/proxy."""
