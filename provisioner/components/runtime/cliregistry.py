"""runtime: the CLI's registry verbs: login, logout, pull, push (the CLI's helper module).

`login` sends the credentials to the daemon, which checks them against the registry and keeps
them (0600, under its root) for later pulls and pushes; the password is read from stdin with
--password-stdin or asked for without echo, never taken from the process list by default.
"""

from __future__ import annotations

import getpass
import sys

from .client import RuntimeClient

VERBS = ("login", "logout", "pull", "push")


def add_registry_verbs(verbs) -> None:
    for verb in ("pull", "push"):
        sub = verbs.add_parser(verb, help=f"{verb} an image from/to a registry")
        sub.add_argument("--insecure", action="store_true", help="plain HTTP or unverified TLS")
        sub.add_argument("image")
    login = verbs.add_parser("login", help="log in to a registry (the daemon keeps the "
                                           "credentials for pull and push)")
    login.add_argument("-u", "--username")
    login.add_argument("-p", "--password", help="insecure: prefer --password-stdin")
    login.add_argument("--password-stdin", action="store_true")
    login.add_argument("--insecure", action="store_true", help="plain HTTP or unverified TLS")
    login.add_argument("registry", nargs="?", default="docker.io")
    logout = verbs.add_parser("logout", help="forget the credentials of a registry")
    logout.add_argument("registry", nargs="?", default="docker.io")


def run_registry_verb(client: RuntimeClient, args, stream, usage_error) -> int:
    if args.verb == "pull":
        return stream(client.pull(args.image, args.insecure))
    if args.verb == "push":
        return stream(client.push(args.image, args.insecure))
    if args.verb == "logout":
        result = client.logout(args.registry)
        print(f"Removing login credentials for {result['registry']}" if result["removed"]
              else f"Not logged in to {result['registry']}")
        return 0
    return _login(client, args, usage_error)


def _login(client: RuntimeClient, args, usage_error) -> int:
    if args.password_stdin and args.password:
        raise usage_error("--password and --password-stdin are mutually exclusive")
    username = args.username
    if args.password_stdin:
        if not username:
            raise usage_error("--password-stdin needs --username")
        password = sys.stdin.read().rstrip("\r\n")
    elif args.password:
        print("WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
              file=sys.stderr)
        password = args.password
    else:
        if not username:
            username = input("Username: ").strip()
        password = getpass.getpass("Password: ")
    if not username or not password:
        raise usage_error("login needs a user name and a password")
    result = client.login(args.registry, username, password, args.insecure)
    print(result["status"])
    return 0
