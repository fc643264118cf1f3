"""`.dockerignore` patterns: globs, `**`, directories, `!` exceptions, last match wins."""

from provisioner.components.runtime.build.dockerignore import DockerIgnore


def test_patterns():
    ignore = DockerIgnore([
        "# comment", "", "*.log", "/secret.txt", "build", "**/*.tmp", "docs/**/draft-*",
        "!build/keep.me", "node_modules/", "te?t",
    ])
    excluded = ["app.log", "secret.txt", "build/out.o", "build", "a/b/c.tmp", "x.tmp",
                "docs/draft-1", "docs/a/b/draft-2", "node_modules/pkg/index.js", "test"]
    kept = ["src/app.log", "src/main.py", "build/keep.me", "docs/final", "tests",
            "Dockerfile", "subdir/secret.txt"]
    for path in excluded:
        assert ignore.excluded(path), path
    for path in kept:
        assert not ignore.excluded(path), path


def test_exception_then_reexclusion_last_wins():
    ignore = DockerIgnore(["*.md", "!README*.md", "README-secret.md"])
    assert not ignore.excluded("README.md")
    assert ignore.excluded("README-secret.md") and ignore.excluded("NOTES.md")
