"""Prompt formats of the refining models: text -> prompt string -> token ids, per template and stage.

Two templates, named in each exported model's manifest (``prompt_template``):

``llama2-chat``: the released gair-prox refiners' input, as the reference builds it
(prox-reference.md §2.1, §2.3). System "You are a helpful, respectful and honest assistant."; user
content is the raw document (doc stage) or ``"[doc]\\n{numbered chunk}\\n[/doc]"`` (chunk stage);
rendered by the tokenizer's own chat template when it carries one (the reference calls
``apply_chat_template``), else by the Llama-2 chat form the reference's transformers 4.39 fell back to.
Encoding reproduces the reference's token ids, quirks included:

- doc: encoded without added special tokens (the rendered ``<s>`` is the one BOS) and right-truncated
  to 2000 tokens *after* templating, so a long document loses its closing `` [/INST]``;
- chunk: encoded *with* special tokens, as vLLM re-encodes the rendered string: two BOS tokens.

``compact``: the project's own small models, designed for a short context::

    <doc>\\n{raw text}\\n</doc>\\n<program>\\n           (doc stage)
    <chunk>\\n{numbered lines}\\n</chunk>\\n<program>\\n   (chunk stage)

Five constant markers (added tokens in ``prox_spark.models.tokenizer``, one token each): 7 tokens of
framing with BOS, where the Llama-2 chat framing costs 40 (doc) and 54 (chunk) tokens of the project's
8k tokenizer. The model writes the program right after ``<program>\\n``. Text is never stripped, so
line numbers and ``normalize`` strings match the document. When a limit applies, truncation cuts the
*content* and keeps the closing frame, so the model always sees where the document ends and that a
program is due (the reference's right truncation hides that).

Rendering (``render_prompt``) is separate from encoding (``encode_prompt``) so training data,
audit tables and the inference UDFs all show the same string. ``tokenizer`` may be a
``tokenizers.Tokenizer`` (what Spark workers load) or a transformers tokenizer (training); this module
imports neither.
"""

from __future__ import annotations

import re

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Kind = Literal["doc", "chunk"]

SYSTEM_PROMPT = "You are a helpful, respectful and honest assistant."
#: the reference's doc-stage limit on the templated prompt (prox-reference.md §2.1)
REFERENCE_DOC_MAX_TOKENS = 2000

#: opening and closing frame of the compact template, per stage
COMPACT_FRAMES: dict[Kind, tuple[str, str]] = {
    "doc": ("<doc>\n", "\n</doc>\n<program>\n"),
    "chunk": ("<chunk>\n", "\n</chunk>\n<program>\n"),
}
#: the compact template's markers, each meant to be one token of the project's tokenizer
COMPACT_MARKERS = ("<doc>", "</doc>", "<chunk>", "</chunk>", "<program>")


class Encoder(Protocol):
    """What ``tokenizers.Tokenizer`` and transformers tokenizers have in common for our purposes."""

    def encode(self, text: str, *args: Any, add_special_tokens: bool = True, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class PromptFormat:
    """How one template encodes one stage's prompt."""

    template: str
    kind: Kind
    #: encode with the tokenizer's special tokens (its BOS)
    add_special_tokens: bool
    #: default token limit of the encoded prompt (None: no limit unless the caller gives one)
    max_tokens: int | None
    #: on truncation keep the closing frame and cut the content (else plain right truncation)
    keep_tail: bool


FORMATS: dict[tuple[str, Kind], PromptFormat] = {
    ("llama2-chat", "doc"): PromptFormat(
        "llama2-chat", "doc", add_special_tokens=False, max_tokens=REFERENCE_DOC_MAX_TOKENS, keep_tail=False
    ),
    ("llama2-chat", "chunk"): PromptFormat("llama2-chat", "chunk", add_special_tokens=True, max_tokens=None, keep_tail=False),
    ("compact", "doc"): PromptFormat("compact", "doc", add_special_tokens=True, max_tokens=None, keep_tail=True),
    ("compact", "chunk"): PromptFormat("compact", "chunk", add_special_tokens=True, max_tokens=None, keep_tail=True),
}
TEMPLATES = tuple(sorted({template for template, _ in FORMATS}))


def prompt_format(template: str, kind: Kind) -> PromptFormat:
    """The format for ``template`` and stage ``kind``; unknown names fail with the known ones listed."""
    try:
        return FORMATS[(template, kind)]
    except KeyError:
        raise ValueError(
            f"unknown prompt template {template!r} or stage {kind!r}: templates are {', '.join(TEMPLATES)}, "
            "stages are doc, chunk"
        ) from None


def chat_messages(kind: Kind, text: str) -> list[dict[str, str]]:
    """The reference's chat messages for a document (doc stage) or a numbered chunk (chunk stage)."""
    content = text if kind == "doc" else f"[doc]\n{text}\n[/doc]"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]


def llama2_chat(system: str, user: str) -> str:
    """Llama-2 chat form of one system + user turn, exactly as its Jinja template renders it.

    The template strips the *joined* system block and user text, so only the user text's trailing
    whitespace goes (its leading whitespace follows the system block and stays).
    """
    content = f"<<SYS>>\n{system}\n<</SYS>>\n\n{user}"
    return f"<s>[INST] {content.strip()} [/INST]"


def render_prompt(template: str, kind: Kind, text: str, tokenizer: object | None = None) -> str:
    """The prompt string for ``text`` (raw document, or numbered chunk from ``prox_spark.chunking``).

    ``tokenizer`` matters only for ``llama2-chat``, and only if it carries a chat template.
    """
    head, tail = _render_parts(prompt_format(template, kind), text, tokenizer)
    return head + tail


def encode_prompt(
    template: str, kind: Kind, text: str, tokenizer: Encoder, *, max_tokens: int | None = None
) -> list[int]:
    """Token ids of the prompt, truncated to ``max_tokens`` (None: the format's own limit, if any).

    ``max_tokens`` counts the whole prompt including BOS; with ``compact`` it must exceed the closing
    frame's length. A truncated ``compact`` prompt is the head's first tokens plus the separately
    encoded frame, so train and serve through this function to see the same ids.
    """
    fmt = prompt_format(template, kind)
    limit = fmt.max_tokens if max_tokens is None else max_tokens
    head, tail = _render_parts(fmt, text, tokenizer)
    if limit is None:
        return encode_text(tokenizer, head + tail, add_special_tokens=fmt.add_special_tokens)
    ids, complete = _leading_ids(tokenizer, head + tail, limit + 1, add_special_tokens=fmt.add_special_tokens)
    if complete and len(ids) <= limit:
        return ids
    if not fmt.keep_tail:
        return ids[:limit]
    tail_ids = encode_text(tokenizer, tail, add_special_tokens=False)
    room = limit - len(tail_ids)
    if room <= 0:
        raise ValueError(f"max_tokens={limit} leaves no room for the closing frame of a {template} {kind} prompt")
    head_ids, _ = _leading_ids(tokenizer, head, room, add_special_tokens=fmt.add_special_tokens)
    return head_ids[:room] + tail_ids


#: ids beyond the ones asked for that a prefix must yield before its leading ids are trusted (the last
#: pre-token of a cut text, and an end-of-text special token, only change the encoding's last few ids)
_PREFIX_MARGIN = 16
_LAST_SPACE = re.compile(r"\s(?=\S*$)")


def _leading_ids(tokenizer: Encoder, text: str, at_least: int, *, add_special_tokens: bool) -> tuple[list[int], bool]:
    """The encoding of ``text`` when it is short, else of a prefix of it that ends at whitespace and has at
    least ``at_least`` ids plus a margin; and whether it is the whole text's encoding.

    A web page is often many times the prompt limit, and encoding all of it just to keep its first tokens
    was half the doc stage's time. Cut at whitespace, the prefix's pre-tokens are whole, so its leading ids
    are the whole text's.
    """
    window = max(64, 8 * (at_least + _PREFIX_MARGIN))
    while window < len(text):
        space = _LAST_SPACE.search(text, 0, window)
        if space is None:
            break
        ids = encode_text(tokenizer, text[: space.start()], add_special_tokens=add_special_tokens)
        if len(ids) >= at_least + _PREFIX_MARGIN:
            return ids[:at_least], False
        window *= 2
    return encode_text(tokenizer, text, add_special_tokens=add_special_tokens), True


def encode_text(tokenizer: Encoder, text: str, *, add_special_tokens: bool) -> list[int]:
    """Token ids from either tokenizer kind: ``tokenizers`` returns an ``Encoding``, transformers a list."""
    encoded = tokenizer.encode(text, add_special_tokens=add_special_tokens)
    ids: Sequence[int] = encoded.ids if hasattr(encoded, "ids") else encoded
    return list(ids)


def _render_parts(fmt: PromptFormat, text: str, tokenizer: object | None) -> tuple[str, str]:
    """(head ending with the content, tail after it): truncation with ``keep_tail`` cuts only the head."""
    if fmt.template == "compact":
        opening, closing = COMPACT_FRAMES[fmt.kind]
        return opening + text, closing
    messages = chat_messages(fmt.kind, text)
    if getattr(tokenizer, "chat_template", None):
        rendered = tokenizer.apply_chat_template(  # type: ignore[attr-defined]
            messages, add_generation_prompt=True, tokenize=False
        )
        return rendered, ""
    return llama2_chat(messages[0]["content"], messages[1]["content"]), ""
