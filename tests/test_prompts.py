"""Prompt formats: the reference's Llama-2 chat prompts (strings and ids, truncation quirks) and ``compact``."""

from __future__ import annotations

import pytest

from prox_spark.prompts import (
    SYSTEM_PROMPT,
    TEMPLATES,
    chat_messages,
    encode_prompt,
    encode_text,
    llama2_chat,
    prompt_format,
    render_prompt,
)

HEAD = f"<s>[INST] <<SYS>>\n{SYSTEM_PROMPT}\n<</SYS>>\n\n"

# Llama-2-chat's template as LlamaTokenizer.default_chat_template shipped it (transformers 4.39; the
# default-system-prompt branch left out): the independent oracle for our own rendering.
LLAMA2_JINJA = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}"
    "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'system' %}{{ '<<SYS>>\\n' + content.strip() + '\\n<</SYS>>\\n\\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}"
    "{% endfor %}"
)


@pytest.fixture(scope="module")
def tokenizer(shared_data):
    from prox_spark.models.tokenizer import train_tokenizer, training_texts

    return train_tokenizer(training_texts(shared_data, max_docs=150), 600)


@pytest.fixture(scope="module")
def llama2_tokenizer(tokenizer):
    from prox_spark.models.tokenizer import to_transformers

    wrapped = to_transformers(tokenizer)
    wrapped.chat_template = LLAMA2_JINJA
    return wrapped


# --- llama2-chat strings -----------------------------------------------------------------------------


def test_llama2_doc_prompt_exact():
    assert render_prompt("llama2-chat", "doc", "Hello world\n\n") == HEAD + "Hello world [/INST]"
    assert render_prompt("llama2-chat", "doc", "  indented\r\n") == HEAD + "  indented [/INST]"


def test_llama2_chunk_prompt_exact():
    chunk = "[000]Home | About\n[001]Welcome"
    assert render_prompt("llama2-chat", "chunk", chunk) == HEAD + "[doc]\n[000]Home | About\n[001]Welcome\n[/doc] [/INST]"


def test_llama2_strips_the_joined_content_like_the_template():
    assert llama2_chat("sys", "   ") == "<s>[INST] <<SYS>>\nsys\n<</SYS>> [/INST]"


@pytest.mark.parametrize(
    ("kind", "text"),
    [("doc", "Hello world\n\n"), ("doc", "  lead\tand trail \n"), ("doc", ""), ("chunk", "[000]a\n[001]")],
)
def test_llama2_rendering_matches_transformers_chat_template(llama2_tokenizer, kind, text):
    expected = llama2_tokenizer.apply_chat_template(chat_messages(kind, text), add_generation_prompt=True, tokenize=False)
    assert render_prompt("llama2-chat", kind, text) == expected
    assert render_prompt("llama2-chat", kind, text, llama2_tokenizer) == expected


def test_a_tokenizer_chat_template_takes_precedence(tokenizer):
    from prox_spark.models.tokenizer import to_transformers

    custom = to_transformers(tokenizer)
    custom.chat_template = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}<assistant>"
    assert render_prompt("llama2-chat", "doc", "x", custom) == f"<system>{SYSTEM_PROMPT}<user>x<assistant>"


# --- llama2-chat ids ---------------------------------------------------------------------------------


def test_llama2_doc_ids_have_one_bos_chunk_ids_two(tokenizer):
    bos = tokenizer.token_to_id("<s>")
    doc = encode_prompt("llama2-chat", "doc", "Hello world", tokenizer)
    assert doc == tokenizer.encode(HEAD + "Hello world [/INST]", add_special_tokens=False).ids
    assert doc[0] == bos and doc[1] != bos
    chunk = encode_prompt("llama2-chat", "chunk", "[000]a", tokenizer)
    assert chunk[:2] == [bos, bos] and chunk[2] != bos


def test_llama2_doc_truncated_to_2000_after_templating(tokenizer):
    text = "Lorem ipsum dolor sit amet. " * 1500
    full = tokenizer.encode(render_prompt("llama2-chat", "doc", text), add_special_tokens=False).ids
    ids = encode_prompt("llama2-chat", "doc", text, tokenizer)
    assert len(full) > 2000 and ids == full[:2000]
    assert tokenizer.decode(ids).startswith(HEAD.removeprefix("<s>"))
    assert not tokenizer.decode(ids).endswith("[/INST]")  # the closing tag is cut, as in the reference
    assert encode_prompt("llama2-chat", "doc", text, tokenizer, max_tokens=50) == full[:50]
    assert tokenizer.decode(encode_prompt("llama2-chat", "doc", "short", tokenizer)).endswith("short [/INST]")


def test_llama2_chunk_is_not_truncated(tokenizer):
    chunk = "\n".join(f"[{i:03d}]some words on a line" for i in range(400))
    ids = encode_prompt("llama2-chat", "chunk", chunk, tokenizer)
    assert len(ids) > 2000 and tokenizer.decode(ids).endswith("[/doc] [/INST]")


def test_transformers_and_tokenizers_give_the_same_ids(tokenizer, llama2_tokenizer):
    for template in TEMPLATES:
        for kind in ("doc", "chunk"):
            text = "[000]Grüße\n[001]keep_doc()"
            assert encode_prompt(template, kind, text, llama2_tokenizer) == encode_prompt(template, kind, text, tokenizer)
    assert encode_text(llama2_tokenizer, "a b", add_special_tokens=True) == tokenizer.encode("a b").ids


# --- compact -------------------------------------------------------------------------------------------


def test_compact_prompts_exact():
    assert render_prompt("compact", "doc", "Title\n\nBody \n") == "<doc>\nTitle\n\nBody \n\n</doc>\n<program>\n"
    assert render_prompt("compact", "chunk", "[000]a\n[001]") == "<chunk>\n[000]a\n[001]\n</chunk>\n<program>\n"


def test_compact_ids_one_bos_and_single_marker_tokens(tokenizer):
    ids = encode_prompt("compact", "doc", "Hi", tokenizer)
    tokens = [tokenizer.id_to_token(i) for i in ids]
    assert tokens[:2] == ["<s>", "<doc>"] and tokens[-4:] == ["</doc>", "Ċ", "<program>", "Ċ"]


def test_compact_truncation_keeps_the_frame(tokenizer):
    text = "Lorem ipsum dolor sit amet. " * 200
    tail = tokenizer.encode("\n</doc>\n<program>\n", add_special_tokens=False).ids
    ids = encode_prompt("compact", "doc", text, tokenizer, max_tokens=64)
    assert len(ids) == 64 and ids[-len(tail):] == tail
    assert ids[: 64 - len(tail)] == tokenizer.encode("<doc>\n" + text).ids[: 64 - len(tail)]
    assert tokenizer.decode(ids).endswith("</doc>\n<program>\n")
    # no limit by default, and a prompt that fits is encoded in one piece
    whole = tokenizer.encode(render_prompt("compact", "doc", text)).ids
    assert encode_prompt("compact", "doc", text, tokenizer) == whole
    short = tokenizer.encode("<doc>\nHi\n</doc>\n<program>\n").ids
    assert encode_prompt("compact", "doc", "Hi", tokenizer, max_tokens=64) == short


@pytest.mark.parametrize("template", ["compact", "llama2-chat"])
def test_truncated_prompts_of_whole_pages_equal_encoding_the_whole_page(tokenizer, shared_data, template):
    """Long pages are encoded from a prefix cut at whitespace (the doc stage's cost): the ids must be exactly
    what encoding the whole page and truncating gives, on real pages of every kind of text."""
    from pathlib import Path

    from tokenizers import Tokenizer

    from prox_spark.evaluation.gold import all_pages
    from prox_spark.prompts import _render_parts

    bundled = Tokenizer.from_file(str(Path(__file__).resolve().parents[1] / "prox_spark/resources/models/doc/tokenizer.json"))
    pages = [p.noisy_text for p, _ in zip(all_pages(shared_data), range(400))][::4]
    pages += ["x" * 20000, "word " * 5000, "\n" * 3000 + "tail words here", "日本語のテキスト" * 800]
    fmt = prompt_format(template, "doc")
    for encoder in (tokenizer, bundled):
        for text in pages:
            for limit in (64, 512):
                head, tail = _render_parts(fmt, text, None)
                whole = encode_text(encoder, head + tail, add_special_tokens=fmt.add_special_tokens)
                if len(whole) <= limit:
                    expected = whole
                elif not fmt.keep_tail:
                    expected = whole[:limit]
                else:
                    tail_ids = encode_text(encoder, tail, add_special_tokens=False)
                    head_ids = encode_text(encoder, head, add_special_tokens=fmt.add_special_tokens)
                    expected = head_ids[: limit - len(tail_ids)] + tail_ids
                assert encode_prompt(template, "doc", text, encoder, max_tokens=limit) == expected


def test_compact_limit_must_leave_room_for_the_frame(tokenizer):
    with pytest.raises(ValueError, match="no room"):
        encode_prompt("compact", "chunk", "[000]" + "x" * 500, tokenizer, max_tokens=3)


# --- formats -----------------------------------------------------------------------------------------


def test_formats_and_unknown_names():
    assert TEMPLATES == ("compact", "llama2-chat")
    assert prompt_format("llama2-chat", "doc").max_tokens == 2000
    with pytest.raises(ValueError, match="compact, llama2-chat"):
        prompt_format("plain", "doc")
    with pytest.raises(ValueError, match="stages are doc, chunk"):
        render_prompt("compact", "page", "x")  # type: ignore[arg-type]
