"""The Dockerfile parser: continuations, comments, directives, forms, substitution, errors."""

import pytest

from provisioner.components.runtime.build.dockerfile import (
    DockerfileError,
    expand,
    parse,
    split_words,
)


def test_continuations_comments_directives_and_forms():
    parsed = parse(
        "# syntax=docker/dockerfile:1\n"
        "# escape=\\\n"
        "\n"
        "FROM busybox\n"
        "# a comment\n"
        "RUN echo one \\\n"
        "    # a comment inside the continuation\n"
        "    && echo two\n"
        'CMD ["sh", "-c", "echo hi"]\n'
        "ENTRYPOINT echo shell form\n"
        "copy --chown=1:2 a b\n")
    keywords = [(i.keyword, i.line) for i in parsed.instructions]
    assert keywords == [("FROM", 4), ("RUN", 6), ("CMD", 9), ("ENTRYPOINT", 10), ("COPY", 11)]
    run, cmd, entrypoint, copy = parsed.instructions[1:]
    assert run.arguments == "echo one && echo two" and run.exec_form is None
    assert cmd.exec_form == ["sh", "-c", "echo hi"]
    assert entrypoint.exec_form is None and entrypoint.arguments == "echo shell form"
    assert copy.flags == {"chown": "1:2"} and copy.arguments == "a b"


def test_backtick_escape_directive():
    parsed = parse("# escape=`\nFROM scratch\nRUN echo a `\n  b\n")
    assert parsed.instructions[1].arguments == "echo a b"


@pytest.mark.parametrize("text, line, message", [
    ("FROM busybox\n\nRUNN echo\n", 3, 'unknown instruction "RUNN"'),
    ("FROM busybox\nRUN echo \\\n  continued\nWORKDIR\n", 4, "WORKDIR needs arguments"),
    ("", 1, "the Dockerfile has no instructions"),
    ("# escape=x\nFROM a\n", 1, "invalid escape character"),
])
def test_errors_name_the_file_and_line(text, line, message):
    with pytest.raises(DockerfileError) as caught:
        parse(text, "Dockerfile")
    assert str(caught.value).startswith(f"Dockerfile:{line}: {message}")


def test_substitution():
    env = {"NAME": "web", "EMPTY": "", "PORT": "80"}
    assert expand("$NAME-${NAME}_${MISSING:-fallback}", env) == "web-web_fallback"
    assert expand("${EMPTY:-d} ${EMPTY-d} ${NAME:+set} ${MISSING:+set}.", env) == "d  set ."
    assert expand("cost \\$5", env) == "cost $5"
    assert split_words('a "b $NAME" \'c $NAME\' d\\ e', env) == ["a", "b web", "c $NAME", "d e"]
    assert split_words("K=$PORT L=\"x y\"", env) == ["K=80", "L=x y"]
