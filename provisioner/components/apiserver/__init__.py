"""components/apiserver."""
