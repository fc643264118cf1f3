"""components/kubelet: the node agent (`kubelet`, provisioner.components.kubelet.main:main).

It talks to the API server with its kubeconfig (components/api's client) and to the container
runtime daemon over its unix socket (components/runtime/client.py). Module map:

  main.py         flags (kubelet's names), wiring of the loops, one-line errors
  config.py       KubeletConfiguration v1beta1: strict fields, defaults, Go durations
  bootstrap.py    TLS bootstrap (CSR for system:node:<name>) and client certificate rotation
  servingcert.py  serverTLSBootstrap: the 10250 certificate by a kubelet-serving CSR, renewed
  kubelet.py      pod sources (API watch on spec.nodeName, static manifests), relist, dispatch
                  to workers, mirror pods, events, status writes, final deletes
  staticpods.py   manifests -> pods (name-node, hashed UID, config.* annotations), mirrors
  podworker.py    one worker per pod: sandbox, volumes, init containers, containers,
                  CrashLoopBackOff, probes and hooks, graceful termination, eviction
  containerstart.py  starting one container: image pulls, env, mounts, securityContext, hooks
  pullsecrets.py  registry credentials for a pull from imagePullSecrets (kubelet's keyring)
  podstatus.py    the pod status as kubelet reports it
  podspec.py      env (valueFrom, envFrom, $(VAR)), QoS, limits and CPU shares, users,
                  securityContext
  podcgroups.py   QoS and pod cgroups (<cgroupRoot>/kubepods[/burstable|/besteffort]/pod<uid>)
                  with the pod's summed shares, CPU quota and memory limit
  security.py     seccompProfile/seccompDefault, hostUsers, procMount, pod sysctls (and the
                  SysctlForbidden admission against allowedUnsafeSysctls)
  volumes.py      emptyDir, hostPath, configMap, secret, downwardAPI, projected (atomic writer)
  tokens.py       service-account tokens for projected volumes (TokenRequest, refresh at 80%)
  dnsfiles.py     /etc/resolv.conf by dnsPolicy and /etc/hosts
  probes.py       exec/httpGet/tcpSocket probes with kubelet's timing fields
  node.py         Node registration, status and conditions, Lease renewal
  hostinfo.py     capacity, nodeInfo, addresses, labels read from the host
  eviction.py     node-pressure eviction with evictionHard
  runtimeview.py  the runtime as the kubelet sees it (labels io.kubernetes.*), async calls
  server.py       the HTTPS server (10250): authn/authz, /pods, /containerLogs, /exec,
                  /attach, /portForward, /stats/summary, /metrics/resource, /metrics
  execstream.py   exec -i/-t and attach over WebSocket (v5/v4 channels: stdin, resize, close)
                  relayed to the runtime's interactive exec and attach
  metrics.py      kubelet's Prometheus metric names
  quantity.py     resource quantities

Run a whole one-machine cluster with `provisioner dev cluster --dir D` (provisioner/dev.py);
tests in tests/kubelet/ start the real API server, runtime daemon and kubelet processes.
"""
