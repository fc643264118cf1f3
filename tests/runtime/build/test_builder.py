"""Builds: layers per instruction, config, cache hits and misses, RUN in real containers,
.dockerignore, ADD archives, and clear errors that leave nothing behind."""

from __future__ import annotations

import io
import os
import stat
import tarfile

import pytest

from provisioner.components.runtime.build.builder import BuildError

from .conftest import read_in_image


def build(builder, directory, dockerfile, **options):
    with open(os.path.join(directory, "Dockerfile"), "w") as out:
        out.write(dockerfile)
    lines: list[str] = []
    image = builder.build(directory, progress=lines.append, **options)
    return image, lines


def test_config_and_copy_build_without_run(builder, store, context):
    directory = context({"app/main.sh": "echo main\n", "app/lib/util.sh": "u\n",
                         "conf.ini": "x=1\n"})
    os.chmod(os.path.join(directory, "app", "main.sh"), 0o750)
    base = store.resolve("busybox")
    image, _ = build(builder, directory, (
        "FROM busybox\n"
        "ENV APP_HOME=/srv/app GREETING=\"hello world\"\n"
        "LABEL org.example.team=web version=1\n"
        "WORKDIR $APP_HOME\n"
        "COPY app/ ./\n"
        "COPY --chown=nobody:nogroup --chmod=600 conf.ini /etc/app/\n"
        "EXPOSE 8080 53/udp\n"
        "USER nobody\n"
        'ENTRYPOINT ["/bin/sh"]\n'
        "CMD main.sh\n"), tags=["web:1"])
    assert image.tags == ["web:1"]
    config = image.config["config"]
    assert "APP_HOME=/srv/app" in config["Env"] and "GREETING=hello world" in config["Env"]
    assert config["Labels"] == {"org.example.team": "web", "version": "1"}
    assert config["WorkingDir"] == "/srv/app"
    assert config["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert config["User"] == "nobody"
    assert config["Entrypoint"] == ["/bin/sh"] and config["Cmd"] == ["/bin/sh", "-c", "main.sh"]
    # WORKDIR (created), COPY, COPY: three layers over the base
    assert len(image.layers) == len(base.layers) + 3
    assert read_in_image(store, image, "/srv/app/main.sh") == "echo main\n"
    assert read_in_image(store, image, "/srv/app/lib/util.sh") == "u\n"
    top = store.layer_dirs(image)[-1]
    conf = os.lstat(os.path.join(top, "etc", "app", "conf.ini"))
    assert (stat.S_IMODE(conf.st_mode), conf.st_uid, conf.st_gid) == (0o600, 65534, 65534)
    main = os.lstat(os.path.join(store.layer_dirs(image)[-2], "srv", "app", "main.sh"))
    assert stat.S_IMODE(main.st_mode) == 0o750
    # /etc in the COPY layer keeps the base image's metadata
    assert stat.S_IMODE(os.lstat(os.path.join(top, "etc")).st_mode) == 0o755
    assert [entry.get("empty_layer", False) for entry in image.config["history"][-9:]] == \
        [True, True, False, False, False, True, True, True, True]


def test_unchanged_rebuild_hits_the_cache_and_a_changed_file_misses(builder, context, store):
    directory = context({"site/index.html": "<h1>one</h1>\n", "other.txt": "o"})
    dockerfile = ("FROM busybox\nENV A=1\nCOPY other.txt /other.txt\n"
                  "COPY site /www\nRUN ls /www > /www/listing\nCMD [\"httpd\", \"-f\"]\n")
    first, _ = build(builder, directory, dockerfile, tags=["site:1"])
    second, lines = build(builder, directory, dockerfile, tags=["site:1"])
    assert second.id == first.id and second.digest == first.digest
    assert sum(line == " ---> Using cache" for line in lines) == 5

    with open(os.path.join(directory, "site", "index.html"), "w") as out:
        out.write("<h1>two</h1>\n")
    third, lines = build(builder, directory, dockerfile, tags=["site:1"])
    assert third.id != first.id
    assert sum(line == " ---> Using cache" for line in lines) == 2     # ENV, first COPY
    assert third.layers[:-2] == first.layers[:-2]
    assert read_in_image(store, third, "/www/index.html") == "<h1>two</h1>\n"

    os.chmod(os.path.join(directory, "other.txt"), 0o600)           # modes are inputs too
    _, lines = build(builder, directory, dockerfile)
    assert sum(line == " ---> Using cache" for line in lines) == 1

    _, lines = build(builder, directory, dockerfile, no_cache=True)
    assert not any("Using cache" in line for line in lines)


def test_run_executes_in_a_container_and_records_deletions(builder, store, context, run_step):
    directory = context({})
    image, lines = build(builder, directory, (
        "FROM busybox\n"
        "ARG FLAVOUR=plain\n"
        "RUN echo built-$FLAVOUR > /hello && rm /etc/group && mkdir -p /data/sub \\\n"
        "    && echo pid-$$ && hostname > /data/host\n"), build_args={"FLAVOUR": "spicy"})
    assert "pid-1" in lines                      # RUN is PID 1 of its own pid namespace
    assert read_in_image(store, image, "/hello") == "built-spicy\n"
    assert read_in_image(store, image, "/etc/group") is None
    top = store.layer_dirs(image)[-1]
    assert stat.S_ISCHR(os.lstat(os.path.join(top, "etc", "group")).st_mode)   # a whiteout
    assert not os.path.exists(os.path.join(top, "proc"))   # runtime mount points not kept
    assert read_in_image(store, image, "/data/host").strip() != os.uname().nodename

    output = bytearray()
    from provisioner.components.runtime.container.spec import Process
    code = run_step(store.layer_dirs(image), str(directory) + "-upper",
                    Process(args=["/bin/sh", "-c", "cat /hello; test -e /etc/group || echo gone"],
                            env=["PATH=/bin"]), output.extend)
    assert code == 0 and output.decode() == "built-spicy\ngone\n"


def test_dockerignore_and_add_archive(builder, store, context, tmp_path):
    directory = context({".dockerignore": "*.secret\nlogs/**\n!logs/keep.log\n",
                         "a.secret": "no", "public.txt": "yes", "logs/x.log": "x",
                         "logs/keep.log": "k"})
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        data = b"from the archive\n"
        info = tarfile.TarInfo("pkg/readme")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with open(os.path.join(directory, "pkg.tar.gz"), "wb") as out:
        out.write(archive.getvalue())
    image, _ = build(builder, directory, "FROM scratch\nCOPY . /ctx/\nADD pkg.tar.gz /opt/\n")
    assert len(image.layers) == 2
    assert sorted(os.listdir(os.path.join(store.layer_dirs(image)[0], "ctx"))) == \
        [".dockerignore", "Dockerfile", "logs", "pkg.tar.gz", "public.txt"]
    assert os.listdir(os.path.join(store.layer_dirs(image)[0], "ctx", "logs")) == ["keep.log"]
    assert read_in_image(store, image, "/opt/pkg/readme") == "from the archive\n"

    with pytest.raises(BuildError, match=r"Dockerfile:2: source 'a.secret' not found in the "
                                         r"build context \(it is excluded by .dockerignore\)"):
        build(builder, directory, "FROM scratch\nCOPY a.secret /\n")


def test_python_image_serves_http(store, run_step, tmp_path):
    python = store.resolve("python:latest")
    assert store.resolve("python:3.11").id == python.id
    script = ("import http.server, threading, urllib.request\n"
              "server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), "
              "http.server.SimpleHTTPRequestHandler)\n"
              "threading.Thread(target=server.serve_forever, daemon=True).start()\n"
              "print(urllib.request.urlopen(f'http://127.0.0.1:{server.server_port}/').status)\n")
    output = bytearray()
    from provisioner.components.runtime.container.spec import Process
    code = run_step(store.layer_dirs(python), str(tmp_path / "upper"),
                    Process(args=["python3", "-c", script], env=python.config["config"]["Env"],
                            cwd="/tmp"), output.extend)
    assert code == 0, output.decode()
    lines = output.decode().splitlines()           # stdout and stderr, in either order
    assert "200" in lines and any(line.endswith('"GET / HTTP/1.1" 200 -') for line in lines)


def assert_nothing_half_created(store, images_before):
    assert {image.id for image in store.list()} == images_before
    assert os.listdir(store.blobs.tmp_dir) == []
    assert [name for name in os.listdir(store.layers_dir) if name.startswith(".")] == []


@pytest.mark.parametrize("dockerfile, message", [
    ("FROM busybox\nENV A=1\nRUNN echo\n", 'Dockerfile:3: unknown instruction "RUNN"'),
    ("FROM busybox\nCOPY missing.txt /\n",
     "Dockerfile:2: source 'missing.txt' not found in the build context"),
    ("FROM nosuchimage:1\n", "Dockerfile:1: image 'nosuchimage:1' is not in the local store"),
    ("FROM busybox\nRUN echo partial > /file && exit 3\n",
     "Dockerfile:2: RUN echo partial > /file && exit 3 failed with exit code 3"),
    ("FROM busybox\nFROM busybox AS second\n", "Dockerfile:2: multi-stage builds"),
    ("FROM busybox\nCOPY --from=builder /a /b\n", "Dockerfile:2: COPY --from needs multi-stage"),
    ("FROM busybox\nADD https://example.com/x.tgz /x\n",
     "Dockerfile:2: ADD from a URL (https://example.com/x.tgz) is not supported"),
    ("FROM busybox\nEXPOSE eighty\n", "Dockerfile:2: EXPOSE 'eighty' is not a port"),
    ("RUN echo\n", "Dockerfile:1: RUN before FROM"),
])
def test_bad_input_gives_one_clear_error_and_leaves_nothing(builder, store, context,
                                                            dockerfile, message):
    before = {image.id for image in store.list()}
    with pytest.raises(BuildError) as caught:
        build(builder, context({"present.txt": "p"}), dockerfile, tags=["broken:1"])
    assert str(caught.value).startswith(message)
    assert_nothing_half_created(store, before)


def test_missing_dockerfile(builder, store, tmp_path):
    with pytest.raises(BuildError, match="no Dockerfile at .*/empty/Dockerfile"):
        builder.build(str(tmp_path / "empty"), progress=lambda line: None)


def test_args_before_from_defaults_and_existing_workdir(builder, store, context):
    directory = context({"v1.txt": "one", "v2.txt": "two"})
    base = store.resolve("busybox")
    dockerfile = ("ARG BASE=nothing\n"
                  "FROM $BASE\n"
                  "ARG VERSION\n"
                  "ENV FILE=v${VERSION:-1}.txt MODE=${MODE:-default}\n"
                  "WORKDIR /tmp\n"                       # exists in busybox: no layer
                  "COPY $FILE /srv/current.txt\n")
    image, lines = build(builder, directory, dockerfile, build_args={"BASE": "busybox"})
    assert len(image.layers) == len(base.layers) + 1
    assert "FILE=v1.txt" in image.config["config"]["Env"]
    assert "MODE=default" in image.config["config"]["Env"]
    assert read_in_image(store, image, "/srv/current.txt") == "one"
    image, lines = build(builder, directory, dockerfile,
                         build_args={"BASE": "busybox", "VERSION": "2", "UNUSED": "x"})
    assert read_in_image(store, image, "/srv/current.txt") == "two"
    assert any("UNUSED" in line and "not consumed" in line for line in lines)
