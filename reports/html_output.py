"""The HTML output file: the rendered page made self-contained, so opening it fetches nothing.

A browser loads what a page references (images, stylesheets, fonts, frames, a refresh
target, SVG `<image>`) the moment a reader opens it, whereas the PDF only ever sees
what the sandboxed fetcher allows. So the page is parsed with the HTML5 parser browsers
follow (tinyhtml5, WeasyPrint's own: unquoted, entity-encoded and SVG-namespaced
attributes come out decoded), every URL a browser would load by itself goes through
the fetcher's own rule (`reports.fetcher.resolve_allowed`), and the tree is written out
again, so the file holds exactly what was checked:

- `data:` URLs and `#fragment` references stay;
- a file the fetcher allows (a logo in `assets/`) becomes a `data:` URI, a stylesheet
  is inlined into a `<style>`;
- anything else is removed: the attribute, or the CSS `url()` becomes `none`.

`<a href>` is a click, not a fetch: http, https and mailto links stay, with
`rel="noopener noreferrer"`. Elements that run code or open a nested document
(`script`, `iframe`, `embed`, `object`, `base`, `meta http-equiv`, SVG animations …)
are dropped. A strict Content-Security-Policy meta tag is the second line of defence
for anything a future browser might fetch that this list does not know.
"""

from __future__ import annotations

import mimetypes
import re
from base64 import b64encode
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urljoin, urlsplit
from xml.etree.ElementTree import Comment, Element, ProcessingInstruction

import tinycss2
import tinyhtml5
from markupsafe import escape
from tinycss2.ast import FunctionBlock, IdentToken, Node, URLToken
from tinycss2.serializer import serialize_url

from reports.fetcher import FetchBlocked, resolve_allowed

__all__ = ["CONTENT_SECURITY_POLICY", "self_contained"]

# `base-uri` and `form-action` do not fall back to `default-src`: named on their own.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
    "base-uri 'none'; form-action 'none'"
)

_HTML = "http://www.w3.org/1999/xhtml"
_SVG = "http://www.w3.org/2000/svg"


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_ATTRIBUTE_PREFIXES = {
    "http://www.w3.org/1999/xlink": "xlink:",
    "http://www.w3.org/XML/1998/namespace": "xml:",
}

_VOID = _names(
    "area base br col embed hr img input keygen link meta param source track wbr "
    "basefont bgsound frame"
)
# Dropped with their content, in any namespace: they run code, open a nested document
# that fetches on its own, change how URLs resolve, or are parsed differently with
# scripting on and off (noscript). SVG animations could set `href` to a remote URL.
_DROPPED = _names(
    "script noscript template iframe frame frameset embed applet portal fencedframe "
    "base noembed noframes param animate set animatemotion animatetransform "
    "animatecolor discard handler listener"
)
_UNWRAPPED = frozenset({"object"})  # what a browser shows when the object fails to load
_LITERAL_TEXT = frozenset({"xmp", "plaintext"})  # raw text; written as an escaped <pre>
_LEADING_NEWLINE = frozenset({"pre", "textarea", "listing"})  # the parser eats one newline
# Attributes a browser fetches, or that name a document outside the page.
_FETCHED = _names("src poster data background lowsrc dynsrc longdesc cite usemap icon profile")
_ALWAYS_DROPPED = _names("action formaction ping manifest codebase archive classid srcdoc xml:base")
_SRCSET = frozenset({"srcset", "imagesrcset"})
_LINKS = frozenset({"a", "area"})
_LINK_SCHEMES = frozenset({"http", "https", "mailto"})
_SVG_IMAGES = frozenset({"image", "feimage"})  # other SVG hrefs point into the page
_SAFE_NAME = re.compile(r"[A-Za-z_][-A-Za-z0-9_.]*(?::[A-Za-z_][-A-Za-z0-9_.]*)?\Z")
# CSS functions whose string arguments are URLs, not text.
_IMAGE_FUNCTIONS = frozenset({"image-set", "-webkit-image-set", "image", "cross-fade"})
_FONT_TYPES = {".woff2": "font/woff2", ".woff": "font/woff", ".ttf": "font/ttf", ".otf": "font/otf"}
# Every way CSS names a URL spells one of these, unless it hides it behind a backslash
# escape: a sheet without any of them is returned as it is (tokenizing costs ~5 ms a sheet).
_MAY_HOLD_URL = re.compile(r"\\|url\(|src\(|image|cross-fade|@import", re.IGNORECASE)
_C0_AND_SPACE = "".join(map(chr, range(0x21)))
_MAX_IMPORT_DEPTH = 5


def self_contained(
    html: str,
    *,
    base_dir: Path,
    allowed_roots: Sequence[Path],
    stylesheets: Sequence[Path] = (),
    styles_marker: str | None = None,
) -> str:
    """`html` as a file that references nothing outside itself.

    Relative URLs resolve against `base_dir`, as in the PDF. `stylesheets` are inlined at
    the comment `styles_marker` (or at the end of `<head>`), their URLs resolved against
    their own folder.
    """
    resolver = _Resolver(allowed_roots)
    styles = "\n".join(
        resolver.stylesheet_file(path.resolve().as_uri(), depth=0) for path in stylesheets
    )
    marker = (
        styles_marker.removeprefix("<!--").removesuffix("-->").strip() if styles_marker else None
    )
    writer = _Writer(resolver, base_dir.resolve().as_uri() + "/", styles, marker)
    return writer.document(tinyhtml5.parse(html))


# --- URLs -------------------------------------------------------------------------------


def _normalized(url: str) -> str:
    """The URL a browser sees: outer controls and spaces stripped, tabs and newlines removed."""
    return re.sub(r"[\t\n\r]", "", url.strip(_C0_AND_SPACE))


class _Resolver:
    """Applies the fetcher's rule to URLs; reads each allowed file once per page."""

    def __init__(self, allowed_roots: Sequence[Path]) -> None:
        self.roots = [root.resolve() for root in allowed_roots]
        self._data_uris: dict[Path, str] = {}

    def _allowed_file(self, url: str, base: str) -> Path | None:
        try:
            return resolve_allowed(urljoin(base, url), self.roots)
        except (FetchBlocked, ValueError, OSError):  # ValueError: a NUL or a bad IPv6 host
            return None

    def fetchable(self, raw: str, base: str) -> str | None:
        """What a fetched URL may become: itself (`data:`, `#id`), a `data:` URI, or None."""
        url = _normalized(raw)
        if not url:
            return None
        if url.startswith("#") or url[:5].lower() == "data:":
            return url
        path = self._allowed_file(url, base)
        if path is None:
            return None
        fragment = url.partition("#")[2]
        return self._data_uri(path) + (f"#{fragment}" if fragment else "")

    @staticmethod
    def link(raw: str) -> str | None:
        """A link a reader may click: http(s), mailto or a place in the page."""
        url = _normalized(raw)
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError:
            return None
        return url if url.startswith("#") or scheme in _LINK_SCHEMES else None

    def stylesheet_file(self, url: str, depth: int, base: str = "") -> str:
        """An allowed stylesheet's text, its own URLs rewritten; "" when not allowed."""
        url = _normalized(url)
        path = self._allowed_file(url, base) if url[:5].lower() != "data:" else None
        if path is None or depth > _MAX_IMPORT_DEPTH:
            return ""
        css = path.read_text(encoding="utf-8", errors="replace")
        return _Css(self).stylesheet(css, path.as_uri(), depth)

    def _data_uri(self, path: Path) -> str:
        if path not in self._data_uris:
            mime = mimetypes.guess_type(path.name)[0] or _FONT_TYPES.get(path.suffix.lower())
            encoded = b64encode(path.read_bytes()).decode("ascii")
            self._data_uris[path] = f"data:{mime or 'application/octet-stream'};base64,{encoded}"
        return self._data_uris[path]


# --- CSS --------------------------------------------------------------------------------


class _Css:
    """Rewrites the URLs of CSS token by token (tinycss2), so escapes and case do not hide one."""

    def __init__(self, resolver: _Resolver) -> None:
        self.resolver = resolver
        self.urls_seen = 0  # text without a URL is given back as it was, byte for byte

    def stylesheet(self, css: str, base: str, depth: int = 0) -> str:
        """A style sheet: `@import` of an allowed file is inlined, any other dropped."""
        if not _MAY_HOLD_URL.search(css):
            return css
        seen, self.urls_seen = self.urls_seen, 0
        nodes = tinycss2.parse_component_value_list(css, skip_comments=False)
        chunks: list[str] = []
        pending: list[Node] = []
        at_start = True  # at the start of a statement, where an at-rule may begin
        imports_count = True  # browsers ignore an @import after a rule
        index = 0
        while index < len(nodes):
            node = nodes[index]
            keyword = node.lower_value if at_start and node.type == "at-keyword" else None
            if keyword in ("import", "namespace"):
                end = index + 1
                while end < len(nodes) and not _ends_statement(nodes[end]):
                    end += 1
                if keyword == "namespace":  # names a namespace, fetches nothing
                    pending.extend(nodes[index : end + 1])
                    imports_count = False
                else:
                    self.urls_seen += 1
                    chunks.append(tinycss2.serialize(pending))
                    pending = []
                    if imports_count:
                        chunks.append(self._import(nodes[index + 1 : end], base, depth))
                index = end + 1
                continue
            pending.append(self._node(node, base))
            if node.type == "{} block":
                imports_count = False
            if node.type not in ("whitespace", "comment"):
                at_start = _ends_statement(node)
            index += 1
        chunks.append(tinycss2.serialize(pending))
        found, self.urls_seen = self.urls_seen, seen
        return "".join(chunks) if found else css

    def values(self, css: str, base: str) -> str:
        """A `style` attribute or an SVG presentation attribute such as `fill`."""
        if not _MAY_HOLD_URL.search(css):
            return css
        seen, self.urls_seen = self.urls_seen, 0
        nodes = tinycss2.parse_component_value_list(css, skip_comments=False)
        rewritten = tinycss2.serialize([self._node(node, base) for node in nodes])
        found, self.urls_seen = self.urls_seen, seen
        return rewritten if found else css

    def _import(self, prelude: list[Node], base: str, depth: int) -> str:
        significant = [n for n in prelude if n.type not in ("whitespace", "comment")]
        url = _url_of(significant[0]) if significant else None
        css = self.resolver.stylesheet_file(url, depth + 1, base) if url is not None else ""
        if not css:
            return ""
        media = tinycss2.serialize(prelude[prelude.index(significant[0]) + 1 :]).strip()
        # A media list is kept as @media; layer() or supports() then match nothing.
        return f"\n@media {media} {{\n{css}\n}}\n" if media else f"\n{css}\n"

    def _node(self, node: Node, base: str, strings_are_urls: bool = False) -> Node:
        kind = node.type
        if kind == "url" or (kind == "string" and strings_are_urls):
            return self._url(node, node.value, base)
        if kind == "function":
            if node.lower_name in ("url", "src"):
                return self._url(node, _url_of(node), base)
            if strings_are_urls and node.lower_name == "var":  # a URL we cannot see here
                self.urls_seen += 1
                return IdentToken(node.source_line, node.source_column, "none")
            inner = node.lower_name in _IMAGE_FUNCTIONS or node.lower_name.endswith("image-set")
            arguments = [self._node(arg, base, inner) for arg in node.arguments]
            return FunctionBlock(node.source_line, node.source_column, node.name, arguments)
        if kind in ("() block", "[] block", "{} block"):
            content = [self._node(child, base, strings_are_urls) for child in node.content]
            return type(node)(node.source_line, node.source_column, content)
        return node

    def _url(self, node: Node, url: str | None, base: str) -> Node:
        self.urls_seen += 1
        safe = self.resolver.fetchable(url, base) if url is not None else None
        if safe is None:
            return IdentToken(node.source_line, node.source_column, "none")
        return URLToken(node.source_line, node.source_column, safe, f"url({serialize_url(safe)})")


def _ends_statement(node: Node) -> bool:
    return node.type == "{} block" or (node.type == "literal" and node.value == ";")


def _url_of(node: Node) -> str | None:
    """The URL of `url(…)`, `url("…")`, `src("…")` or a bare string (as after @import)."""
    if node.type in ("url", "string"):
        return node.value
    if node.type == "function" and node.lower_name in ("url", "src"):
        strings = [arg for arg in node.arguments if arg.type == "string"]
        return strings[0].value if strings else None
    return None


# --- HTML -------------------------------------------------------------------------------


def _escape(text: str) -> str:
    # As Jinja2's autoescape does (& < > " '), for text and attribute values alike: with
    # < and > escaped in attributes too, no value can turn into markup in any parser.
    return str(escape(text))


def _style_text(css: str) -> str:
    # Inside HTML's <style> text is raw: no "</style" may close it early and no "<" may be
    # read as a tag by a parser that puts it in another namespace. In CSS, \3c is "<".
    return css.replace("<", "\\3c ")


class _Writer:
    """Writes the parsed tree back as HTML, sanitizing each element on the way."""

    def __init__(self, resolver: _Resolver, base: str, styles: str, marker: str | None) -> None:
        self.resolver = resolver
        self.css = _Css(resolver)
        self.base = base
        self.styles = styles
        self.marker = marker
        self.styles_written = False
        self.out: list[str] = []

    def document(self, root: Element) -> str:
        self.out.append("<!DOCTYPE html>\n")
        # Iterative, not recursive: a deeply nested page must not hit the recursion limit.
        stack: list[tuple[Element, Callable[[Element], None] | None]] = [(root, None)]
        while stack:
            element, close = stack.pop()
            if close is not None:
                close(element)
                continue
            self._open(element, stack)
        return "".join(self.out)

    def _open(self, element: Element, stack: list) -> None:
        tag = element.tag
        if tag is Comment or tag is ProcessingInstruction:
            if tag is Comment and self.marker and (element.text or "").strip() == self.marker:
                self._write_styles()
            self._tail(element)
            return
        namespace, _, local = tag[1:].partition("}") if tag.startswith("{") else (_HTML, "", tag)
        name = local.lower()  # the rules go by name in every namespace: no confusion
        if name in _UNWRAPPED or not _SAFE_NAME.match(local):
            self._children(element, stack, close=self._tail)
            return
        if name == "style":
            self._style(element, namespace, local)
        elif name == "link":
            self._link(element)
        elif name in _LITERAL_TEXT:
            self.out.append(f"<pre>{_escape(''.join(element.itertext()))}</pre>")
        if name in ("style", "link", *_LITERAL_TEXT, *_DROPPED) or (
            name == "meta" and _is_pragma(element)
        ):
            self._tail(element)
            return
        self.out.append(f"<{local}{self._attributes(element, namespace, name)}>")
        if name == "head" and namespace == _HTML:
            # First in <head>: a CSP meta tag only governs what comes after it. No added
            # whitespace, so that cleaning the output again gives the same file.
            self.out.append(
                '<meta charset="utf-8"><meta http-equiv="Content-Security-Policy" '
                f'content="{_escape(CONTENT_SECURITY_POLICY)}">'
            )
        if namespace == _HTML and name in _VOID:
            self._tail(element)
            return
        if (
            namespace == _HTML
            and name in _LEADING_NEWLINE
            and (element.text or "").startswith("\n")
        ):
            self.out.append("\n")
        self._children(element, stack, close=lambda e: self._close(e, local, name))

    def _children(self, element: Element, stack: list, close: Callable[[Element], None]) -> None:
        if element.text:
            self.out.append(_escape(element.text))
        stack.append((element, close))
        stack.extend((child, None) for child in reversed(element))

    def _close(self, element: Element, local: str, name: str) -> None:
        if name == "head" and not self.styles_written:
            self._write_styles()
        self.out.append(f"</{local}>")
        self._tail(element)

    def _tail(self, element: Element) -> None:
        if element.tail:
            self.out.append(_escape(element.tail))

    def _write_styles(self) -> None:
        if not self.styles_written and self.styles:
            self.out.append(f"<style>\n{_style_text(self.styles)}\n</style>")
        self.styles_written = True

    def _style(self, element: Element, namespace: str, local: str) -> None:
        # A style element's sheet is its own text, the text of any child elements is not.
        css = (element.text or "") + "".join(child.tail or "" for child in element)
        css = self.css.stylesheet(css, self.base)
        text = _style_text(css) if namespace == _HTML else _escape(css)
        attributes = self._attributes(element, namespace, "style")
        self.out.append(f"<{local}{attributes}>{text}</{local}>")

    def _link(self, element: Element) -> None:
        """A stylesheet the fetcher allows becomes a <style>; an icon a data: URI; else gone."""
        rel = (element.get("rel") or "").lower().split()
        href = element.get("href") or ""
        if "stylesheet" in rel and "alternate" not in rel:
            css = self.resolver.stylesheet_file(href, depth=0, base=self.base)
            if css:
                media = element.get("media")
                attributes = f' media="{_escape(media)}"' if media else ""
                self.out.append(f"<style{attributes}>\n{_style_text(css)}\n</style>")
        elif "icon" in rel and (icon := self.resolver.fetchable(href, self.base)):
            self.out.append(f'<link rel="icon" href="{_escape(icon)}">')

    def _attributes(self, element: Element, namespace: str, name: str) -> str:
        kept: list[tuple[str, str]] = []
        for key, value in element.attrib.items():
            attribute = _attribute_name(key)
            if attribute is None or not _SAFE_NAME.match(attribute):
                continue
            safe = self._attribute(attribute, value, namespace, name)
            if safe is not None:
                kept.append((attribute, safe))
        href = next((value for attribute, value in kept if attribute == "href"), "#")
        if name in _LINKS and not href.startswith("#"):  # the page it opens gets no handle
            kept = [(a, v) for a, v in kept if a.lower() != "rel"]
            rel = (element.get("rel") or "").split()
            kept.append(("rel", " ".join(dict.fromkeys([*rel, "noopener", "noreferrer"]))))
        return "".join(f' {attribute}="{_escape(value)}"' for attribute, value in kept)

    def _attribute(self, attribute: str, value: str, namespace: str, name: str) -> str | None:
        lowered = attribute.lower()
        if lowered.startswith("on") or lowered in _ALWAYS_DROPPED:
            return None  # event handlers run script; the rest submit, ping or embed
        if lowered in ("href", "xlink:href"):
            if name in _LINKS:
                return self.resolver.link(value)
            if namespace == _SVG and name not in _SVG_IMAGES:
                url = _normalized(value)
                return url if url.startswith("#") else None
            return self.resolver.fetchable(value, self.base)
        if lowered.startswith("xlink:"):
            return None  # role and arcrole name documents; nothing else is used
        if lowered in _FETCHED:
            return self.resolver.fetchable(value, self.base)
        if lowered in _SRCSET:
            return _srcset(value, lambda url: self.resolver.fetchable(url, self.base))
        if lowered == "style" or (namespace != _HTML and "(" in value):
            return self.css.values(value, self.base)  # SVG fill="url(…)" and the like
        return value


def _attribute_name(key: str) -> str | None:
    if not key.startswith("{"):
        return key
    namespace, _, local = key[1:].partition("}")
    prefix = _ATTRIBUTE_PREFIXES.get(namespace)  # xmlns declarations are not needed in HTML
    return prefix + local if prefix else None


def _is_pragma(element: Element) -> bool:
    # http-equiv (refresh, set-cookie, another CSP) and charset: this module writes its own
    # charset (the file is UTF-8) and CSP.
    return any(key.lower() in ("http-equiv", "charset") for key in element.attrib)


def _srcset(value: str, fetchable: Callable[[str], str | None]) -> str | None:
    """Each candidate of a srcset, split as browsers do: URL, then descriptors up to a ","."""
    candidates: list[str] = []
    position, length = 0, len(value)
    while position < length:
        while position < length and value[position] in " \t\n\r\f,":
            position += 1
        start = position
        while position < length and value[position] not in " \t\n\r\f":
            position += 1
        url = value[start:position]
        descriptors = ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            start, depth = position, 0  # a "," inside parentheses belongs to a descriptor
            while position < length and (value[position] != "," or depth):
                if value[position] == "(":
                    depth += 1
                elif value[position] == ")" and depth:
                    depth -= 1
                position += 1
            descriptors = " ".join(value[start:position].split())
        safe = fetchable(url) if url else None
        if safe:
            candidates.append(f"{safe} {descriptors}".strip())
    return ", ".join(candidates) or None
