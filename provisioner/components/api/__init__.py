"""components/api: what every component uses to talk to the API server.

- kubeconfig.py   load a kubeconfig: server, SSL context with the client identity, CA (ca_pem)
- client.py       async JSON client: get/list/create/replace/patch/update_status/bind/delete/watch
- informer.py     shared informers: list then watch, re-list on 410/errors, indexed store, handlers;
                  InformerFactory shares one informer per resource in a process
- leaderelection.py  Lease-based leader election (client-go's timings and record fields)
- events.py       EventRecorder: core/v1 Events with count aggregation, never blocking the caller
- server.py       ComponentServer: HTTPS /healthz /livez /readyz /metrics for a component
- delegation.py   its delegated authentication (client certificates, TokenReview) and
                  authorization (always-allowed paths, system:masters, SubjectAccessReview)
- quantity.py     resource quantities ("100m", "64Mi") as numbers
- objects.py      small helpers over objects as dicts (conditions, owner references, paths)
"""
