"""runtime: `provisioner-runtime`, the Docker-like command line; a thin client of the daemon API.

`provisioner-runtime daemon` runs the daemon itself. Every other verb talks to it over its socket
(`--socket`, $PROVISIONER_RUNTIME_SOCKET, or the default). Exit codes as Docker's: 1 for errors the
daemon reports, 125 when `run` itself fails, 2 for bad usage, otherwise the container's or the
exec'd command's own code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import cliterminal
from .client import DaemonUnreachable, RuntimeAPIError, RuntimeClient
from .cliformat import ago, emit, human_size, shorten, table
from .cliregistry import VERBS as REGISTRY_VERBS
from .cliregistry import add_registry_verbs, run_registry_verb
from .clirun import RunFailed, add_run_verb, attach_and_pump, cmd_run, start_exit_code
from .paths import DEFAULT_CGROUP_PARENT, DEFAULT_ROOT

PROG = "provisioner-runtime"


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        print(f"Error: {message}\nSee '{self.prog} --help'.", file=sys.stderr)
        sys.exit(2)


def _registry_urls(values: list[str], flag: str) -> tuple[str, ...]:
    from urllib.parse import urlparse

    for value in values:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            print(f"Error: invalid {flag} {value!r}: use a URL such as https://mirror.example "
                  "or http://127.0.0.1:5000", file=sys.stderr)
            raise SystemExit(2)
    return tuple(value.rstrip("/") for value in values)


def _docker_socket(args) -> str | None:
    """`--docker-socket`: a path, `none`, or (not given) docker.sock beside the daemon's socket."""
    from .paths import socket_path

    if args.docker_socket == "none":
        return None
    if args.docker_socket:
        return os.path.abspath(args.docker_socket)
    runtime_socket = socket_path(args.daemon_socket or args.socket)
    return os.path.join(os.path.dirname(os.path.abspath(runtime_socket)), "docker.sock")


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description="A container runtime with a Docker-like CLI.")
    parser.add_argument("--socket", help="the daemon's unix socket")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)

    daemon = verbs.add_parser("daemon", help="run the runtime daemon in the foreground")
    daemon.add_argument("--root", default=DEFAULT_ROOT)
    daemon.add_argument("--socket", dest="daemon_socket")
    daemon.add_argument("--bridge", default="prt0")
    daemon.add_argument("--subnet", default="10.88.0.0/16")
    daemon.add_argument("--cgroup-parent", default=DEFAULT_CGROUP_PARENT)
    daemon.add_argument("--pause-image", default="busybox:latest")
    daemon.add_argument("--no-bootstrap-images", dest="bootstrap_images", action="store_false",
                        help="do not add busybox and python:3.11 from host files on start")
    daemon.add_argument("--pod-network", choices=("auto", "cni", "bridge"), default="auto",
                        help="pod sandboxes' network: CNI plugins, the bridge, or CNI when a "
                             "configuration is installed (auto)")
    daemon.add_argument("--cni-conf-dir", default="/etc/cni/net.d")
    daemon.add_argument("--cni-bin-dir", default="/opt/cni/bin",
                        help="CNI plugin directories, separated by ':'")
    daemon.add_argument("--cni-cache-dir", default="/var/lib/cni")
    daemon.add_argument("--docker-socket", default="",
                        help="serve Docker's Engine API on this unix socket (default: docker.sock "
                             "beside --socket; 'none' to not serve it)")
    daemon.add_argument("--registry-mirror", action="append", default=[], dest="registry_mirrors",
                        metavar="URL", help="a registry mirror tried first for docker.io pulls "
                                            "(repeatable, tried in order)")
    daemon.add_argument("--default-registry", metavar="URL",
                        help="where docker.io pulls go when no mirror serves them (default: "
                             "Docker Hub)")

    build = verbs.add_parser("build", help="build an image from a Dockerfile")
    build.add_argument("-t", "--tag", action="append", default=[])
    build.add_argument("-f", "--file", default="Dockerfile")
    build.add_argument("--build-arg", action="append", default=[])
    build.add_argument("--no-cache", action="store_true")
    build.add_argument("context")

    images = verbs.add_parser("images", help="list images")
    images.add_argument("--bootstrap", action="store_true",
                        help="first add busybox and python:3.11 from host files if missing")

    add_run_verb(verbs)

    ps = verbs.add_parser("ps", help="list containers")
    ps.add_argument("-a", "--all", action="store_true")
    ps.add_argument("-q", "--quiet", action="store_true")

    logs = verbs.add_parser("logs", help="show a container's output")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("--tail")
    logs.add_argument("container")

    exec_ = verbs.add_parser("exec", help="run a command in a running container")
    exec_.add_argument("-e", "--env", action="append", default=[])
    exec_.add_argument("-w", "--workdir")
    exec_.add_argument("-u", "--user")
    exec_.add_argument("-i", "--interactive", action="store_true",
                       help="keep stdin open and send it to the command")
    exec_.add_argument("-t", "--tty", action="store_true", help="give the command a terminal")
    exec_.add_argument("container")
    exec_.add_argument("command", nargs=argparse.REMAINDER)

    attach = verbs.add_parser("attach", help="attach this terminal to a running container's "
                                             "input and output")
    attach.add_argument("--no-stdin", action="store_true", help="do not send this terminal's "
                                                                "input")
    attach.add_argument("container")

    stop = verbs.add_parser("stop", help="stop containers (TERM, then KILL after -t seconds)")
    stop.add_argument("-t", "--time", type=float, default=10)
    stop.add_argument("containers", nargs="+")
    start = verbs.add_parser("start", help="start stopped containers")
    start.add_argument("containers", nargs="+")
    kill = verbs.add_parser("kill", help="send a signal to containers")
    kill.add_argument("-s", "--signal", default="KILL")
    kill.add_argument("containers", nargs="+")
    rm = verbs.add_parser("rm", help="remove containers")
    rm.add_argument("-f", "--force", action="store_true")
    rm.add_argument("containers", nargs="+")
    wait = verbs.add_parser("wait", help="wait for containers to exit; print their exit codes")
    wait.add_argument("containers", nargs="+")
    inspect = verbs.add_parser("inspect", help="show containers or images as JSON")
    inspect.add_argument("names", nargs="+")
    rmi = verbs.add_parser("rmi", help="remove images")
    rmi.add_argument("-f", "--force", action="store_true")
    rmi.add_argument("images", nargs="+")
    save = verbs.add_parser("save", help="write an image to an OCI tarball")
    save.add_argument("-o", "--output", required=True)
    save.add_argument("image")
    load = verbs.add_parser("load", help="load images from an OCI or docker-save tarball")
    load.add_argument("-i", "--input", required=True)
    add_registry_verbs(verbs)
    tag = verbs.add_parser("tag", help="give an image another name")
    tag.add_argument("source")
    tag.add_argument("target")
    verbs.add_parser("version", help="client and daemon versions")
    return parser


# -- verbs ------------------------------------------------------------------------------------

def cmd_build(client: RuntimeClient, args) -> int:
    from .buildcontext import context_tar

    if not os.path.isdir(args.context):
        raise UsageError(f"build context {args.context} is not a directory")
    build_args = {}
    for item in args.build_arg:
        key, _, value = item.partition("=")
        build_args[key] = value if "=" in item else os.environ.get(key, "")
    # The builder's own progress ends with "Successfully built/tagged": nothing to add here.
    with context_tar(args.context, args.file) as archive:
        return cmd_stream(client.build(archive, args.tag, args.file, build_args, args.no_cache))


def cmd_images(client: RuntimeClient, args) -> int:
    if args.bootstrap:
        client.bootstrap_images()
    rows = []
    for image in client.images():
        short = image["Id"].removeprefix("sha256:")[:12]
        for tag in image["RepoTags"] or ["<none>:<none>"]:
            name, _, version = tag.rpartition(":")
            rows.append([name, version, short, ago(image["Created"]), human_size(image["Size"])])
    print(table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], rows))
    return 0


def cmd_ps(client: RuntimeClient, args) -> int:
    containers = client.containers(all=args.all)
    if args.quiet:
        for container in containers:
            print(container["Id"][:12])
        return 0
    rows = [[c["Id"][:12], c["Image"], json.dumps(shorten(c["Command"], 20), ensure_ascii=False),
             ago(c["Created"]), c["Status"], c["Ports"], ",".join(c["Names"])]
            for c in containers]
    print(table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"],
                rows))
    return 0


def cmd_logs(client: RuntimeClient, args) -> int:
    tail = None
    if args.tail not in (None, "all"):
        try:
            tail = int(args.tail)
        except ValueError:
            raise UsageError(f"--tail takes a number of lines, not {args.tail!r}") from None
    for event in client.logs(args.container, follow=args.follow, tail=tail):
        emit(event)
    return 0


def cmd_exec(client: RuntimeClient, args) -> int:
    if not args.command:
        raise UsageError("exec needs a command after the container name")
    if args.interactive or args.tty:
        return cmd_exec_interactive(client, args)
    exit_code = 126
    for event in client.exec(args.container, args.command, env=args.env, workdir=args.workdir,
                             user=args.user):
        if "exit_code" in event:
            exit_code = event["exit_code"]
        else:
            emit(event)
    return exit_code


def cmd_exec_interactive(client: RuntimeClient, args) -> int:
    """exec -i (stdin) and/or -t (a terminal, sized as the user's and resized with it)."""
    size = cliterminal.terminal_size(sys.stdout.fileno()) if args.tty else None
    connection = client.exec_stream(args.container, args.command, env=args.env,
                                    workdir=args.workdir, user=args.user,
                                    stdin=args.interactive, tty=args.tty, size=size)
    try:
        return cliterminal.pump(connection, stdin=args.interactive, tty=args.tty)
    except cliterminal.StreamFailed as error:
        print(f"Error: {error.message}", file=sys.stderr)
        code = start_exit_code(error.message)     # 127 not found, 126 not executable
        return 126 if code == 125 else code


def each(names: list[str], action) -> int:
    """Docker's way with several names: act on each, report each failure, exit 1 if any."""
    failed = False
    for name in names:
        try:
            output = action(name)
            if output is not None:
                print(output)
        except DaemonUnreachable:
            raise
        except RuntimeAPIError as error:
            print(f"Error: {error}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


def cmd_inspect(client: RuntimeClient, args) -> int:
    found, failed = [], False
    for name in args.names:
        try:
            found.append(client.inspect(name))
        except RuntimeAPIError as error:
            if error.status != 404:
                raise
            try:
                found.append(client.image(name))
            except RuntimeAPIError:
                print(f"Error: no such container or image: {name}", file=sys.stderr)
                failed = True
    print(json.dumps(found, indent=4))
    return 1 if failed else 0


def cmd_stream(events) -> int:
    for event in events:
        if "progress" in event:
            print(event["progress"], flush=True)
    return 0


def cmd_version(client: RuntimeClient, args) -> int:
    from .daemon.service import VERSION

    print(f"Client:\n Version:    {VERSION}\n")
    server = client.version()
    print(f"Server:\n Version:    {server['version']}\n API:        {server['api_version']}\n"
          f" Root:       {server['root']}\n Cgroups:    {server['cgroup_mode']}")
    return 0


def cmd_save(client: RuntimeClient, args) -> int:
    partial = f"{args.output}.partial"
    try:
        with open(partial, "wb") as out:
            client.save(args.image, out)
        os.replace(partial, args.output)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return 0


def cmd_load(client: RuntimeClient, args) -> int:
    with open(args.input, "rb") as archive:
        return cmd_stream(client.load(archive))


def dispatch(client: RuntimeClient, args) -> int:
    verb = args.verb
    if verb == "build":
        return cmd_build(client, args)
    if verb == "images":
        return cmd_images(client, args)
    if verb == "run":
        return cmd_run(client, args)
    if verb == "ps":
        return cmd_ps(client, args)
    if verb == "logs":
        return cmd_logs(client, args)
    if verb == "exec":
        return cmd_exec(client, args)
    if verb == "attach":
        info = client.inspect(args.container)
        config = info.get("Config") or {}
        return attach_and_pump(client, args.container, stdin=bool(config.get("OpenStdin")) and
                               not args.no_stdin, tty=bool(config.get("Tty")))
    if verb == "stop":
        return each(args.containers, lambda n: (client.stop(n, args.time), n)[1])
    if verb == "start":
        return each(args.containers, lambda n: (client.start(n), n)[1])
    if verb == "kill":
        return each(args.containers, lambda n: (client.kill(n, args.signal), n)[1])
    if verb == "rm":
        return each(args.containers, lambda n: (client.remove(n, args.force), n)[1])
    if verb == "wait":
        return each(args.containers, lambda n: client.wait(n)["exit_code"])
    if verb == "inspect":
        return cmd_inspect(client, args)
    if verb == "rmi":
        return each(args.images, lambda ref: "\n".join(client.remove_image(ref, args.force)))
    if verb == "save":
        return cmd_save(client, args)
    if verb == "load":
        return cmd_load(client, args)
    if verb in REGISTRY_VERBS:
        return run_registry_verb(client, args, cmd_stream, UsageError)
    if verb == "tag":
        client.tag_image(args.source, args.target)
        return 0
    if verb == "version":
        return cmd_version(client, args)
    raise UsageError(f"unknown verb {verb}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.verb:
        parser.print_help(sys.stderr)
        return 2
    if args.verb == "daemon":
        from .daemon.main import serve
        from .daemon.service import DaemonConfig
        from .paths import socket_path

        return serve(DaemonConfig(root=os.path.abspath(args.root),
                                  socket=socket_path(args.daemon_socket or args.socket),
                                  bridge=args.bridge, subnet=args.subnet,
                                  cgroup_parent=args.cgroup_parent, pause_image=args.pause_image,
                                  bootstrap_images=args.bootstrap_images,
                                  pod_network=args.pod_network, cni_conf_dir=args.cni_conf_dir,
                                  cni_bin_dirs=tuple(args.cni_bin_dir.split(":")),
                                  cni_cache_dir=args.cni_cache_dir,
                                  docker_socket=_docker_socket(args),
                                  registry_mirrors=_registry_urls(args.registry_mirrors,
                                                                  "--registry-mirror"),
                                  default_registry=(_registry_urls([args.default_registry],
                                                                   "--default-registry")[0]
                                                    if args.default_registry else None)))
    client = RuntimeClient(args.socket)
    try:
        return dispatch(client, args)
    except UsageError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    except RunFailed as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.exit_code
    except RuntimeAPIError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 125 if args.verb == "run" else 1
    except OSError as error:
        print(f"Error: {error.filename or ''}: {error.strerror or error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
