"""components/scheduler."""
