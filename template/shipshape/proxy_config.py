"""Read what the rendered proxy config in deploy/ actually does, and test it with its server.

The deploy checks compare settings with the nginx or Caddy config this project
ships, so the two cannot drift apart unnoticed: whether it terminates TLS,
whether it adds its own Strict-Transport-Security header, and which folder it
serves a URL prefix such as STATIC_URL from. Neither format is parsed by hand:

- nginx's config is read by crossplane, NGINX's parser for Python, which
  follows `include` as nginx does: a location moved into an included file is
  still seen.
- The Caddyfile is read as Caddy reads it: `caddy adapt` turns it into Caddy's
  JSON config. Where no caddy binary is installed (a CI runner, a laptop), a
  small reader of the directives this project's Caddyfile uses stands in, and
  the result says so (ProxyConfig.fallback).

preflight and the template's own tests run `nginx -t` through nginx_test(),
around the one minimal nginx.conf that nginx_test_conf() writes.
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
import re
import shlex
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import crossplane
from django.conf import settings

from .tools import run, which

HSTS_HEADER = "strict-transport-security"


class UnreadableConfig(Exception):
    """The config cannot be read: missing, or rejected by its reader; the message says why."""


@dataclass
class ProxyConfig:
    kind: str  # "nginx" or "caddy"
    path: Path
    # nginx: crossplane's directives, includes inlined. Caddy: its JSON config.
    tree: list | dict
    # Set when Caddy was not there to read its own file: what read it instead, and why.
    fallback: str | None = None

    @property
    def name(self) -> str:
        """How messages name the config, with the reader when it was not the server's own."""
        name = f"the proxy config {self.path.name}"
        return f"{name} (read {self.fallback})" if self.fallback else name

    @property
    def terminates_tls(self) -> bool:
        if self.kind == "nginx":
            return any(
                (d["directive"] == "listen" and "ssl" in d["args"])
                or d["directive"] == "ssl_certificate"
                for d in _nginx_walk(self.tree)
            )
        https_port = self.tree.get("apps", {}).get("http", {}).get("https_port", 443)
        return any(
            server.get("tls_connection_policies")
            or any(address.rpartition(":")[2] == str(https_port) for address in server["listen"])
            for server in _caddy_servers(self.tree)
        )

    @property
    def sends_hsts(self) -> bool:
        return self.sends_header(HSTS_HEADER)

    def sends_header(self, header: str) -> bool:
        """Whether the config adds this response header anywhere (name in lowercase)."""
        if self.kind == "nginx":
            return any(
                d["directive"] in ("add_header", "more_set_headers")
                and d["args"]
                and d["args"][0].lower().split(":")[0] == header
                for d in _nginx_walk(self.tree)
            )
        # The headers handler, and reverse_proxy's header_down, both change responses.
        return any(
            name.lower() == header
            for node in _json_walk(self.tree)
            if isinstance(node.get("response"), dict)
            for operation in ("set", "add")
            for name in node["response"].get(operation, {})
        )

    @property
    def certificate_files(self) -> dict[str, str]:
        """The files the server loads TLS from when it starts: path -> "certificate" or "key"."""
        if self.kind == "nginx":
            parts = {"ssl_certificate": "certificate", "ssl_certificate_key": "key"}
            files = [
                (d["args"][0], parts[d["directive"]])
                for d in _nginx_walk(self.tree)
                if d["directive"] in parts and d["args"]
            ]
        else:
            loaded = self.tree.get("apps", {}).get("tls", {}).get("certificates", {})
            files = [
                (pair[part], part)
                for pair in loaded.get("load_files", [])
                for part in ("certificate", "key")
            ]
        # nginx takes a variable (a certificate per SNI name) or inline data: no file to find.
        return {name: part for name, part in files if not name.startswith(("$", "data:"))}

    @property
    def upstream_addresses(self) -> list[str]:
        """nginx's upstream servers as host:port: names nginx resolves when it loads the config."""
        if self.kind != "nginx":
            return []
        return [
            server["args"][0]
            for upstream in _nginx_walk(self.tree)
            if upstream["directive"] == "upstream"
            for server in upstream.get("block", [])
            if server["directive"] == "server" and not server["args"][0].startswith("unix:")
        ]

    def directories_served(self, url: str) -> list[str]:
        """The folders the proxy serves a URL prefix (STATIC_URL) from: one per server or site."""
        prefix = "/" + url.strip("/") + "/"
        if self.kind == "nginx":
            return _nginx_directories(self.tree, prefix)
        probe = prefix + "shipshape-probe.css"
        found = []
        for server in _caddy_servers(self.tree):
            for site in server.get("routes", []):
                request = {"path": probe, "root": None}
                if _caddy_handle([site], request) == "file_server" and request["root"]:
                    found.append(_file_folder(request["root"], request["path"]))
        return found

    def nginx_text(self, replace: dict[str, str]) -> tuple[str, bool]:
        """The nginx config as one file with these arguments replaced, and whether lines match.

        When every argument to replace is in the main file, that file's own text
        with the values replaced, so nginx's messages keep its line numbers;
        otherwise crossplane writes the whole config out, includes inlined.
        """
        files = {d.get("file") for d in _nginx_walk(self.tree) if set(d["args"]) & set(replace)}
        if files <= {str(self.path)}:
            text = self.path.read_text()
            for old, new in replace.items():
                text = text.replace(old, new)
            return text, True

        def replaced(directives: list[dict]) -> list[dict]:
            return [
                {
                    **d,
                    "args": [replace.get(arg, arg) for arg in d["args"]],
                    **({"block": replaced(d["block"])} if "block" in d else {}),
                }
                for d in directives
            ]

        return crossplane.build(replaced(self.tree)) + "\n", False


def configured() -> tuple[str, Path | None]:
    """The proxy answer and the path of its rendered config, from settings.SHIPSHAPE."""
    conf = getattr(settings, "SHIPSHAPE", {})
    path = conf.get("proxy_config")
    return conf.get("proxy", ""), Path(path) if path else None


def load() -> ProxyConfig | None:
    """The configured proxy config; None when the project has none (a load balancer)."""
    kind, path = configured()
    if path is None or kind not in ("nginx", "caddy"):
        return None
    return read(kind, path)


def read(kind: str, path: Path) -> ProxyConfig:
    """Read an nginx config or a Caddyfile; raise UnreadableConfig with the reader's reason."""
    try:
        stamp = path.stat().st_mtime_ns
    except OSError as exc:
        raise UnreadableConfig(f"{path}: {exc.strerror or exc}") from None
    return _read(kind, path, stamp, which("caddy") if kind == "caddy" else None)


# `check --deploy` asks several checks about the same file: it is read once per change.
@functools.lru_cache(maxsize=8)
def _read(kind: str, path: Path, stamp: int, caddy: str | None) -> ProxyConfig:
    if kind == "nginx":
        return ProxyConfig(kind, path, _read_nginx(path))
    if caddy is None:
        return ProxyConfig(kind, path, _adapt_caddyfile(path.read_text()), CADDY_FALLBACK)
    return ProxyConfig(kind, path, _caddy_adapt(caddy, path))


# nginx ------------------------------------------------------------------------


def _read_nginx(path: Path) -> list[dict]:
    # A site config holds http-context directives and nginx -t checks arguments:
    # crossplane only reads, so it checks neither.
    payload = crossplane.parse(
        str(path), combine=True, check_ctx=False, check_args=False, strict=False
    )
    if payload["errors"]:
        raise UnreadableConfig("; ".join(error["error"] for error in payload["errors"]))
    return payload["config"][0]["parsed"]


def _nginx_walk(directives: list[dict]) -> Iterator[dict]:
    for directive in directives:
        yield directive
        yield from _nginx_walk(directive.get("block", []))


def _nginx_directories(directives: list[dict], prefix: str, root: str | None = None) -> list[str]:
    """Folders of the locations for exactly this prefix; root is inherited from outer blocks."""
    root = next((d["args"][0] for d in directives if d["directive"] == "root"), root)
    found = []
    for directive in directives:
        block = directive.get("block")
        if block is None:
            continue
        if directive["directive"] == "location":
            paths = [arg for arg in directive["args"] if arg not in ("^~", "=")]
            if paths and paths[0].rstrip("/") + "/" == prefix:
                alias = next((d["args"][0] for d in block if d["directive"] == "alias"), None)
                here = next((d["args"][0] for d in block if d["directive"] == "root"), root)
                if alias:
                    found.append(posixpath.normpath(alias))
                elif here:
                    found.append(posixpath.normpath(posixpath.join(here, prefix.lstrip("/"))))
                continue
        found += _nginx_directories(block, prefix, root)
    return found


def nginx_test_conf(site: Path, workdir: Path) -> Path:
    """The smallest nginx.conf around a site config, for `nginx -t -c`.

    The site goes into the http context, as /etc/nginx/sites-enabled/ does on
    the server; every path nginx writes (pid, logs, temp folders) is in workdir,
    so the test needs neither root nor the server's own folders.
    """
    mime = Path("/etc/nginx/mime.types")
    lines = [
        f"pid {workdir / 'nginx.pid'};",
        "error_log stderr;",
        "events {}",
        "http {",
        *([f"    include {mime};"] if mime.exists() else []),
        "    access_log off;",
        *(
            f"    {kind}_temp_path {workdir / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        ),
        f"    include {site};",
        "}",
    ]
    main = workdir / "nginx.conf"
    main.write_text("\n".join(lines) + "\n")
    return main


def nginx_test(binary: str, site: Path, workdir: Path) -> subprocess.CompletedProcess:
    """`nginx -t` on a site config: exit status 0 and nothing on stderr when nginx accepts it."""
    main = nginx_test_conf(site, workdir)
    return run([binary, "-t", "-q", "-e", "stderr", "-p", workdir, "-c", main])


# `http2 on` came with nginx 1.25.1; the compose image's nginx has it, Debian 12's 1.22 not.
HTTP2_DIRECTIVE = re.compile(r"^\s*http2\s+on\s*;", re.MULTILINE)


def nginx_too_old(binary: str, path: Path) -> str | None:
    """Why the nginx here cannot judge this config (it is older than the config needs)."""
    if not HTTP2_DIRECTIVE.search(path.read_text()):
        return None
    found = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False)
    version = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", found.stderr + found.stdout)
    if version is None or tuple(map(int, version.groups())) >= (1, 25, 1):
        return None
    return (
        f"nginx {'.'.join(version.groups())} here predates `http2 on` (1.25.1); check the config "
        "with the nginx that runs it: docker compose run --rm nginx nginx -t"
    )


def validate(
    config: ProxyConfig, binary: str, workdir: Path
) -> tuple[subprocess.CompletedProcess, list[str]]:
    """The config through its own server's check (`nginx -t`, `caddy validate`), here.

    What only exists on the server is stood in for, and each stand-in is named
    in the notes: certificate files missing here (e.g. in CI) are replaced by a
    throwaway pair, and an nginx upstream name that does not resolve here (a
    compose service) by 127.0.0.1, since nginx resolves it when it loads.
    """
    replace, notes = _stand_in_certificates(config.certificate_files, workdir)
    for address in config.upstream_addresses:
        host, _, port = address.rpartition(":")
        try:
            socket.getaddrinfo(host, port or None)
        except OSError:
            replace[address] = f"127.0.0.1:{port}" if port else "127.0.0.1"
            notes.append(f"upstream {address} does not resolve here; tested as {replace[address]}")
    if config.kind == "nginx":
        if not replace:
            return nginx_test(binary, config.path, workdir), notes
        site = workdir / config.path.name
        text, same_lines = config.nginx_text(replace)
        site.write_text(text)
        result = nginx_test(binary, site, workdir)
        if same_lines:
            # Line for line the project's file: name it in nginx's messages, not the copy.
            result.stderr = result.stderr.replace(str(site), str(config.path))
        else:
            notes.append("tested as one file written by crossplane, its includes inlined")
        return result, notes
    caddyfile = config.path
    if replace:
        text = caddyfile.read_text()
        for old, new in replace.items():
            text = text.replace(old, new)
        caddyfile = workdir / "Caddyfile"
        caddyfile.write_text(text)
    # Caddy keeps state under HOME; validation must not touch the user's.
    env = {
        **os.environ,
        **dict.fromkeys(("HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"), str(workdir)),
    }
    return run(
        [binary, "validate", "--config", caddyfile, "--adapter", "caddyfile"], env=env
    ), notes


def _stand_in_certificates(
    files: dict[str, str], workdir: Path
) -> tuple[dict[str, str], list[str]]:
    missing = [name for name in files if not Path(name).exists()]
    if not missing:
        return {}, []
    openssl = which("openssl")
    if openssl is None:
        return {}, [f"{', '.join(missing)} missing and openssl not installed"]
    cert, key = workdir / "stand-in.crt", workdir / "stand-in.key"
    run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=preflight.invalid", "-keyout", key, "-out", cert]
    )
    replace = {name: str(key if files[name] == "key" else cert) for name in missing}
    return replace, [f"a throwaway certificate stood in for {', '.join(missing)}"]


# Caddy ------------------------------------------------------------------------

CADDY_FALLBACK = "by shipshape's own Caddyfile reader, as caddy is not installed here"


def _caddy_adapt(caddy: str, path: Path) -> dict:
    result = run([caddy, "adapt", "--adapter", "caddyfile", "--config", path])
    if result.returncode != 0:
        reason = result.stderr.strip().splitlines()[-1:] or ["caddy adapt failed"]
        raise UnreadableConfig(reason[0].removeprefix("Error: "))
    return json.loads(result.stdout)


def _caddy_servers(config: dict) -> list[dict]:
    return list(config.get("apps", {}).get("http", {}).get("servers", {}).values())


def _json_walk(node) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        node = list(node.values())
    if isinstance(node, list):
        for child in node:
            yield from _json_walk(child)


def _caddy_matches(matchers: list[dict], path: str) -> bool:
    """Whether a route's matcher sets let a plain GET of this path through.

    Host and protocol are assumed to match; a matcher with any other condition
    (an expression, a header, a method) is for other requests than a plain GET.
    """

    def one(matcher: dict) -> bool:
        if set(matcher) - {"path", "path_regexp", "host", "protocol"}:
            return False
        patterns = matcher.get("path")
        if patterns is not None and not any(
            path.startswith(p[:-1]) if p.endswith("*") else path == p for p in patterns
        ):
            return False
        regexp = matcher.get("path_regexp")
        return regexp is None or re.search(regexp["pattern"], path) is not None

    return not matchers or any(one(matcher) for matcher in matchers)


def _caddy_handle(routes: list[dict], request: dict) -> str | None:
    """Follow a request through Caddy's routes: the handler that answers it, or None.

    `request` holds the path and the root; rewrites and vars change them on the
    way, as Caddy's own handlers do.
    """
    groups = set()
    for route in routes:
        if route.get("group") in groups or not _caddy_matches(
            route.get("match", []), request["path"]
        ):
            continue
        if route.get("group"):
            groups.add(route["group"])
        for handler in route.get("handle", []):
            kind = handler.get("handler")
            if kind == "vars" and "root" in handler:
                request["root"] = handler["root"]
            elif kind == "rewrite" and "strip_path_prefix" in handler:
                strip = "/" + handler["strip_path_prefix"].strip("/")
                if request["path"].startswith(strip + "/"):
                    request["path"] = request["path"][len(strip) :]
            elif kind == "subroute":
                answered = _caddy_handle(handler.get("routes", []), request)
                if answered:
                    return answered
            elif kind == "file_server":
                request["root"] = handler.get("root", request["root"])
                return kind
            elif kind in ("reverse_proxy", "static_response", "error"):
                return kind
        if route.get("terminal"):
            return None
    return None


def _file_folder(root: str, path: str) -> str:
    return posixpath.dirname(posixpath.normpath(posixpath.join(root, path.lstrip("/"))))


def _caddyfile_blocks(text: str) -> list:
    """Caddyfile lines as [words, children] pairs; children is None for a line without a block."""
    stack: list[list] = [[]]
    for line in text.splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            words = line.split()
        if words == ["}"]:
            if len(stack) > 1:
                stack.pop()
        elif words and words[-1] == "{":
            entry = [words[:-1], []]
            stack[-1].append(entry)
            stack.append(entry[1])
        elif words:
            stack[-1].append([words, None])
    return stack[0]


def _adapt_caddyfile(text: str) -> dict:
    """Caddy's JSON for the directives this project's Caddyfile uses, as `caddy adapt` writes it.

    Enough for the three questions above: which sites serve HTTPS, which headers
    they set, and which folders file_server serves a path from.
    """
    config: dict = {"apps": {"http": {"servers": {}}}}
    http = config["apps"]["http"]
    certificates = []
    for words, block in _caddyfile_blocks(text):
        if block is None:
            continue
        if not words:  # the global options block
            for option, _ in block:
                if option[0] in ("http_port", "https_port") and len(option) > 1:
                    http[option[0]] = int(option[1])
            continue
        if words[0].startswith("("):  # a snippet
            continue
        addresses = [a for word in words for a in word.split(",") if a]
        plain = all(
            a.startswith("http://") or a.endswith(f":{http.get('http_port', 80)}")
            for a in addresses
        )
        listen = f":{http.get('http_port', 80) if plain else http.get('https_port', 443)}"
        server = http["servers"].setdefault(listen, {"listen": [listen], "routes": []})
        if not plain:
            server["tls_connection_policies"] = [{}]
        matchers = {
            line[0]: {"path": line[2:]} if line[1:2] == ["path"] else {}
            for line, _ in block
            if line[0].startswith("@")
        }
        handlers = _caddyfile_handlers(block, matchers, certificates)
        server["routes"].append({"handle": [{"handler": "subroute", "routes": handlers}]})
    if certificates:
        config["apps"]["tls"] = {"certificates": {"load_files": certificates}}
    return config


def _caddyfile_handlers(block: list, matchers: dict, certificates: list) -> list[dict]:
    def match(words: list[str]) -> list[dict]:
        if words and words[0].startswith("@"):
            return [matchers.get(words[0], {})]
        if words and words[0].startswith("/"):
            return [{"path": [words[0]]}]
        return []

    def route(handler: dict, matched: list[dict], **extra) -> dict:
        return (
            {"match": matched, "handle": [handler], **extra}
            if matched
            else {"handle": [handler], **extra}
        )

    routes = []
    for words, children in block:
        directive, args = words[0], words[1:]
        matched = match(args)
        rest = args[1:] if matched or args[:1] == ["*"] else args
        if directive == "tls" and len(args) == 2:
            certificates.append({"certificate": args[0], "key": args[1]})
        elif directive == "root" and rest:
            routes.append(route({"handler": "vars", "root": rest[-1]}, matched))
        elif directive == "uri" and rest[:1] == ["strip_prefix"] and len(rest) > 1:
            routes.append(route({"handler": "rewrite", "strip_path_prefix": rest[1]}, matched))
        elif directive == "header":
            names = [rest[0]] if rest else [line[0] for line, _ in children or []]
            response = {"set": {name.lstrip("+>-"): [] for name in names}}
            routes.append(route({"handler": "headers", "response": response}, matched))
        elif directive == "file_server":
            routes.append(route({"handler": "file_server"}, matched))
        elif directive == "reverse_proxy":
            routes.append(route({"handler": "reverse_proxy"}, matched))
        elif directive in ("redir", "respond", "abort"):
            routes.append(route({"handler": "static_response"}, matched))
        elif directive in ("handle", "handle_path", "route") and children is not None:
            inner = _caddyfile_handlers(children, matchers, certificates)
            if directive == "handle_path" and matched:
                strip = matched[0].get("path", ["/"])[0].rstrip("*")
                inner.insert(0, {"handle": [{"handler": "rewrite", "strip_path_prefix": strip}]})
            group = {"group": "handle"} if directive != "route" else {}
            routes.append(route({"handler": "subroute", "routes": inner}, matched, **group))
    return routes
