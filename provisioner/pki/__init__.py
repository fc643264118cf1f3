"""The cluster's PKI: certificate authorities, certificates with SANs, kubeconfigs.

Built on the `cryptography` library. Keys are EC P-256 unless a caller asks for RSA; private
keys are always written 0600 in 0700 directories, atomically.
"""
