"""components/controllers."""
