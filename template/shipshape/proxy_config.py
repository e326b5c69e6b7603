"""Read what the rendered proxy config in deploy/ actually does.

The deploy checks compare settings with the nginx or Caddy file this project
ships, so the two cannot drift apart unnoticed: whether it terminates TLS,
whether it adds its own Strict-Transport-Security header, and which folder it
serves STATIC_URL from. Both formats are parsed into the same small tree of
directives; nothing here needs nginx or Caddy installed.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

HSTS_HEADER = "strict-transport-security"


@dataclass
class Directive:
    name: str
    args: list[str] = field(default_factory=list)
    block: list[Directive] | None = None

    def children(self) -> list[Directive]:
        return self.block or []

    def walk(self):
        yield self
        for child in self.children():
            yield from child.walk()


@dataclass
class ProxyConfig:
    kind: str  # "nginx" or "caddy"
    path: Path
    directives: list[Directive]

    @property
    def terminates_tls(self) -> bool:
        if self.kind == "nginx":
            return any(
                (d.name == "listen" and "ssl" in d.args) or d.name == "ssl_certificate"
                for d in self._all()
            )
        # Caddy serves HTTPS for every site address that is not explicitly http://.
        return any(
            not address.startswith("http://") and not address.endswith(":80")
            for site in self._caddy_sites()
            for address in _caddy_addresses(site)
        )

    @property
    def sends_hsts(self) -> bool:
        for d in self._all():
            if self.kind == "nginx":
                if d.name in ("add_header", "more_set_headers") and d.args:
                    if d.args[0].lower().split(":")[0] == HSTS_HEADER:
                        return True
            elif d.name == "header":
                args = [a for a in d.args if not a.startswith(("@", "/", "*"))]
                if args and args[0].lower().lstrip("+>") == HSTS_HEADER:
                    return True
                for line in d.children():
                    if line.name.lower().lstrip("+>") == HSTS_HEADER:
                        return True
        return False

    def static_dirs(self, static_url: str) -> list[str]:
        """The folders the proxy serves STATIC_URL from (one per server/site that serves it)."""
        prefix = "/" + static_url.strip("/") + "/"
        if self.kind == "nginx":
            return _nginx_static_dirs(self.directives, prefix)
        return _caddy_static_dirs(self._caddy_sites(), prefix)

    def _all(self):
        for d in self.directives:
            yield from d.walk()

    def _caddy_sites(self) -> list[Directive]:
        # The global options block is a bare "{"; snippets are "(name)".
        return [
            d
            for d in self.directives
            if d.block is not None and d.name != "{" and not d.name.startswith("(")
        ]


def configured() -> tuple[str, Path | None]:
    """The proxy answer and the path of its rendered config, from settings.SHIPSHAPE."""
    conf = getattr(settings, "SHIPSHAPE", {})
    path = conf.get("proxy_config")
    return conf.get("proxy", ""), Path(path) if path else None


def load() -> ProxyConfig | None:
    """Parse the configured proxy config; None when the project has none (a load balancer)."""
    kind, path = configured()
    if path is None or kind not in ("nginx", "caddy"):
        return None
    text = path.read_text()
    parse = parse_nginx if kind == "nginx" else parse_caddyfile
    return ProxyConfig(kind, path, parse(text))


# nginx ------------------------------------------------------------------------

NGINX_TOKEN = re.compile(r"\"(?:\\.|[^\"])*\"|'(?:\\.|[^'])*'|[{};]|[^\s{};\"']+")


def _strip_nginx_comments(text: str) -> str:
    lines = []
    for line in text.splitlines():
        quote = None
        for index, char in enumerate(line):
            if quote:
                quote = None if char == quote else quote
            elif char in "\"'":
                quote = char
            elif char == "#":
                line = line[:index]
                break
        lines.append(line)
    return "\n".join(lines)


def parse_nginx(text: str) -> list[Directive]:
    stack: list[list[Directive]] = [[]]
    words: list[str] = []
    for token in NGINX_TOKEN.findall(_strip_nginx_comments(text)):
        if token == ";":
            if words:
                stack[-1].append(Directive(words[0], words[1:]))
            words = []
        elif token == "{":
            directive = Directive(words[0] if words else "", words[1:], [])
            stack[-1].append(directive)
            stack.append(directive.block)
            words = []
        elif token == "}":
            if len(stack) > 1:
                stack.pop()
            words = []
        else:
            words.append(token[1:-1] if token[0] in "\"'" else token)
    return stack[0]


def _nginx_static_dirs(directives: list[Directive], prefix: str) -> list[str]:
    found = []
    for server in (d for top in directives for d in top.walk() if d.name == "server" and d.block):
        server_root = next((d.args[0] for d in server.children() if d.name == "root"), None)
        for location in (d for d in server.walk() if d.name == "location" and d.block):
            paths = [a for a in location.args if a not in ("^~", "=", "~", "~*")]
            if not paths or paths[0].rstrip("/") + "/" != prefix:
                continue
            alias = next((d.args[0] for d in location.children() if d.name == "alias"), None)
            root = next((d.args[0] for d in location.children() if d.name == "root"), server_root)
            if alias:
                found.append(_normalise(alias))
            elif root:
                found.append(_normalise(posixpath.join(root, prefix.lstrip("/"))))
    return found


# Caddy ------------------------------------------------------------------------


def parse_caddyfile(text: str) -> list[Directive]:
    stack: list[list[Directive]] = [[]]
    for raw in text.splitlines():
        try:
            words = shlex.split(raw, comments=True)
        except ValueError:
            words = raw.split()
        if not words:
            continue
        if words == ["}"]:
            if len(stack) > 1:
                stack.pop()
            continue
        if words[-1] == "{":
            directive = Directive(words[0] if len(words) > 1 else "{", words[1:-1], [])
            stack[-1].append(directive)
            stack.append(directive.block)
        else:
            stack[-1].append(Directive(words[0], words[1:]))
    return stack[0]


def _caddy_addresses(site: Directive) -> list[str]:
    return [a for word in [site.name, *site.args] for a in word.split(",") if a]


def _caddy_static_dirs(sites: list[Directive], prefix: str) -> list[str]:
    pattern = prefix + "*"
    found = []
    for site in sites:
        static_matchers = {
            d.name
            for d in site.children()
            if d.name.startswith("@")
            and (pattern in d.args or any(pattern in c.args for c in d.children()))
        }

        def is_static(args: list[str], matchers: set[str] = static_matchers) -> bool:
            return bool(args) and (args[0] == pattern or args[0] in matchers)

        site_root = None
        for d in site.children():
            if d.name == "root" and is_static(d.args) and len(d.args) > 1:
                site_root = _normalise(posixpath.join(d.args[1], prefix.lstrip("/")))
            elif d.name in ("handle_path", "handle", "route") and d.block and is_static(d.args):
                strips = d.name == "handle_path" or any(
                    c.name == "uri" and c.args[:1] == ["strip_prefix"] for c in d.children()
                )
                root = next((c.args[-1] for c in d.children() if c.name == "root" and c.args), None)
                if root:
                    suffix = "" if strips else prefix.lstrip("/")
                    found.append(_normalise(posixpath.join(root, suffix)))
        if site_root:
            found.append(site_root)
    return found


def _normalise(path: str) -> str:
    return posixpath.normpath(path)
