# The two commands users run first (see README.md): `make cluster` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
LAB ?= lab
NODES ?= 3
KUBECONFIG_OUT ?= inventories/lab/admin.conf

.PHONY: deps install cluster test unit e2e bench lint clean-lab images box vagrant-cluster

deps:
	@bash scripts/install-deps.sh

# The virtualenv with this project and its console scripts, nothing else.
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

cluster: deps install
	$(BIN)/provisioner lab up --name $(LAB) --nodes $(NODES)
	$(BIN)/provisioner create cluster -f inventories/lab/cluster.yaml
	@$(BIN)/provisioner kubeconfig -f inventories/lab/cluster.yaml -o $(KUBECONFIG_OUT)
	@echo
	@echo "The cluster is up: $(NODES) lab hosts, smoke tests passed. Use it with:"
	@echo "  export KUBECONFIG=$(abspath $(KUBECONFIG_OUT))"
	@echo "  export PATH=$(abspath $(BIN)):\$$PATH      # this project's kubectl"
	@echo
	@KUBECONFIG=$(KUBECONFIG_OUT) $(BIN)/kubectl get nodes -o wide
	@echo
	@echo "  $(BIN)/provisioner verify -f inventories/lab/cluster.yaml      # smoke tests again"
	@echo "  $(BIN)/provisioner lab list                                    # hosts and addresses"
	@echo "Tear down: $(BIN)/provisioner delete cluster -f inventories/lab/cluster.yaml && $(BIN)/provisioner lab down --name $(LAB)"

test: deps install
	$(BIN)/pytest tests --durations=25

unit: install
	$(BIN)/pytest tests -m 'not e2e'

e2e: deps install
	$(BIN)/pytest tests -m e2e

# Every benchmark writes JSON under benchmarks/results/; none asserts a time.
bench: deps install
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# The offline images (busybox, python:3.11) in the runtime's image store; idempotent.
images: deps install
	$(PY) -m provisioner.components.runtime.images.bootstrap

lint: install
	$(BIN)/ruff check provisioner tests benchmarks roles inventories

clean-lab: install
	$(BIN)/provisioner lab down --name $(LAB)

# The Vagrant lab's own box (Debian bookworm, debootstrapped here), registered with vagrant;
# cached by its inputs. `lab up --provider vagrant` builds it too when missing.
box: deps install
	$(PY) -c 'from provisioner.lab.box import main; main()'

# The same cluster on Vagrant VMs (libvirt; KVM where the CPU has it, else QEMU emulation).
vagrant-cluster: deps install
	$(BIN)/provisioner lab up --provider vagrant --nodes $(NODES)
	$(BIN)/provisioner create cluster -f inventories/vagrant/cluster.yaml
