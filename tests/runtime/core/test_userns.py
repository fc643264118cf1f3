"""User namespaces (spec.user_namespace, as Kubernetes' hostUsers: false): root in the container
is an unprivileged id range on the host; image files still belong to the container's root
(idmapped layers); exec'd processes join the same mapping."""

import io
import os

from provisioner.components.runtime.container import api
from provisioner.components.runtime.container.spec import Mount, Process

from .conftest import read_log, run_to_exit, wait_for_log

HOST_ID = 3_000_000 + (os.getpid() % 1000) * 65536     # clear of real users, per test process
IDS = {"host_uid": HOST_ID, "host_gid": HOST_ID, "size": 65536}


def test_root_in_the_container_is_an_unprivileged_range_on_the_host(make_spec, tmp_path):
    secret = tmp_path / "host-secret"
    secret.write_text("host only\n")
    os.chmod(secret, 0o600)                       # root's on the host
    spec = make_spec(["sh", "-c", "id -u; id -g; cat /proc/self/uid_map; ls -ln /bin/busybox; "
                      "echo written > /new-file && echo wrote-root-fs; "
                      "cat /secret 2>&1; echo up; sleep 300"],
                     user_namespace=IDS,
                     mounts=[Mount(str(secret), "/secret", "bind", ["ro"])])
    started = api.start(spec)
    wait_for_log(spec, "up")
    output = read_log(spec)
    assert output.startswith("0\n0\n")
    assert f"0 {HOST_ID} 65536" in " ".join(output.split())
    assert " 0 0 " in " ".join(output.split())    # the image's files belong to its root
    assert "wrote-root-fs" in output
    assert "Permission denied" in output and "host only" not in output
    status = os.stat(f"/proc/{started.pid}")
    assert (status.st_uid, status.st_gid) == (HOST_ID, HOST_ID)
    new_file = os.stat(os.path.join(spec.state_dir, "upper", "new-file"))
    assert new_file.st_uid == HOST_ID

    out, err = io.BytesIO(), io.BytesIO()
    code = api.exec_process(spec.state_dir, Process(args=["sh", "-c", "id -u; cat /proc/self/uid_map"],
                                                    env=["PATH=/bin"]), out, err)
    assert code == 0, err.getvalue()
    assert out.getvalue().startswith(b"0\n")
    assert f"0 {HOST_ID} 65536".encode() in b" ".join(out.getvalue().split())


def test_without_a_user_namespace_root_is_the_hosts(make_spec):
    spec = make_spec(["cat", "/proc/self/uid_map"])
    run_to_exit(spec)
    assert "0 0 4294967295" in " ".join(read_log(spec).split())


def test_an_idmap_volume_shows_host_ids_as_the_containers(make_spec, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "from-host").write_text("hello\n")
    os.chmod(shared / "from-host", 0o600)          # root's on the host
    spec = make_spec(["sh", "-c", "cat /data/from-host && echo made > /data/from-container && "
                                  "ls -ln /data/from-host"],
                     user_namespace=IDS, mounts=[Mount(str(shared), "/data", "bind",
                                                       ["rbind", "idmap"])])
    final = run_to_exit(spec)
    output = read_log(spec)
    assert final.exit_code == 0, output
    assert "hello" in output and " 0 0 " in " ".join(output.split())
    # what the container's root made belongs to root on the host through the same mapping
    assert os.stat(shared / "from-container").st_uid == 0
