"""Token accounting and retention of the fake's conversation model."""

from __future__ import annotations

from translator_bot.fake.conversation import Conversation, Item


def _audio_item(item_id: str, role: str, ms: int, text: str | None = None) -> Item:
    return Item(id=item_id, role=role, modality="audio", text=text, audio=bytearray(ms * 48))  # type: ignore[arg-type]


def test_tokens_count_audio_text_and_instructions():
    conv = Conversation()
    conv.add(_audio_item("u1", "user", 2000, text="ignored transcript"))
    conv.add(_audio_item("a1", "assistant", 1000, text="abcdefgh"))
    tokens = conv.input_tokens("1234")
    assert (tokens.text, tokens.audio) == (1 + 2, 50 + 25)


def test_truncation_drops_transcript_and_audio_after_the_point():
    conv = Conversation()
    item = _audio_item("a1", "assistant", 1000, text="abcdefgh")
    conv.add(item)
    item.truncated_ms, item.text = 400, None
    assert conv.input_tokens(None).total == 10
    wire = item.to_wire(with_audio=True)
    assert wire["content"][0]["transcript"] is None
    assert len(wire["content"][0]["audio"]) == len(__import__("base64").b64encode(bytes(400 * 48)))


def test_insert_positions_and_delete():
    conv = Conversation()
    assert conv.add(Item("a", "user", "text", "x")) is None
    assert conv.add(Item("b", "user", "text", "y")) == "a"
    assert conv.add(Item("c", "system", "text", "z"), "root") is None
    assert conv.add(Item("d", "user", "text", "w"), "a") == "a"
    assert [i.id for i in conv.items] == ["c", "a", "d", "b"]
    assert conv.delete("a") and not conv.delete("a")
    try:
        conv.add(Item("e", "user", "text"), "missing")
    except KeyError:
        pass
    else:
        raise AssertionError("unknown previous_item_id accepted")


def test_retention_drops_oldest_items_only_when_over_budget():
    conv = Conversation()
    for n in range(10):
        conv.add(_audio_item(f"u{n}", "user", 4000))  # 100 tokens each
    assert conv.enforce_retention(None, 2000) == []
    dropped = conv.enforce_retention(None, 550)
    assert dropped == ["u0", "u1", "u2", "u3", "u4"]
    assert conv.input_tokens(None).total == 500
    conv.add(_audio_item("u10", "user", 4000))
    assert conv.enforce_retention(None, 550, retain_ratio=0.5) == ["u5", "u6", "u7", "u8"]


def test_session_truncation_setting_is_honoured():
    from translator_bot.fake.responses import apply_truncation

    def full() -> Conversation:
        conv = Conversation()
        for n in range(10):
            conv.add(_audio_item(f"u{n}", "user", 4000))  # 100 tokens each
        return conv

    conv = full()
    assert apply_truncation(conv, {"truncation": "disabled"}, 300, None) == []
    assert apply_truncation(conv, {"truncation": "auto"}, 300, None) == [f"u{n}" for n in range(7)]
    conv = full()
    ratio = {
        "truncation": {
            "type": "retention_ratio",
            "retention_ratio": 0.5,
            "token_limits": {"post_instructions": 400},
        }
    }
    # Budget 400 + 1 (instructions); half of it is 200, so only one 100-token item stays.
    assert len(apply_truncation(conv, ratio, 32_000, "abcd")) == 9
