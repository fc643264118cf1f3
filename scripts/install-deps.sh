#!/usr/bin/env bash
# Installs the Debian packages the operator machine needs for the lab, the tests and the
# benchmarks. Idempotent: packages already present are not touched, apt-get update runs
# only when something is missing.
set -euo pipefail

packages=(
  debootstrap systemd-container     # local lab hosts (debootstrapped roots, systemd-nspawn)
  iproute2 iptables                 # lab bridge and NAT, runtime networking
  openssh-client                    # ssh-keygen for lab keys
  python3-venv                      # virtualenvs
  busybox-static                    # the offline busybox image for runtime tests
  runc                              # benchmark anchor for the container runtime
  podman                            # benchmark anchor for the runtime's Docker API (podman run)
  libseccomp2                       # the runtime's seccomp filters (libseccomp.so.2 via ctypes)
  docker-registry                   # the cluster registry (shipped to the first control-plane host); pull/push tests
  docker-compose                    # Compose v1 (client only) against the runtime's Docker API
  containernetworking-plugins       # reference CNI plugins (/usr/lib/cni) for the CNI tests
  dnsmasq-base                      # DNS benchmark anchor (answers from a hosts file)
  rsync ca-certificates curl
  vagrant vagrant-libvirt           # the Vagrant lab: VMs on libvirt/QEMU (provisioner/lab/vagrant.py)
  libvirt-daemon-system libvirt-clients qemu-system-x86 dnsmasq-base
  qemu-utils extlinux syslinux-common  # building the lab's own Vagrant box (provisioner/lab/box.py)
)

# podman's package drops a CNI network list into /etc/cni/net.d, where this project's runtime
# (and any CNI runtime on this machine) would take it for the pod network; podman itself uses
# netavark here and does not need it.
podman_cni_list() { rm -f /etc/cni/net.d/87-podman-bridge.conflist; }

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  podman_cni_list
  exit 0
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
podman_cni_list
# docker-registry starts itself on install; tests run their own instance on loopback.
systemctl disable --now docker-registry >/dev/null 2>&1 || true
pkill -f '/usr/bin/docker-registry serve /etc/docker/registry/config.yml' 2>/dev/null || true
