"""components/kubelet."""
