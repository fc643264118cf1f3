"""Kubernetes objects the provisioner writes, built from the cluster spec as pure data.

Static pod manifests for the control plane, the kubelet's configuration, and the add-ons applied
through the API. Phases decide where they go and when; this package only says what they are,
so they can be tested without hosts.
"""
