"""LLM answers as real providers send them, shown in WeChat: content filters and refusals
(finish_reason, HTTP errors, ``message.refusal``), answers that break off, reasoning fields,
and Markdown. The wire shapes are the providers' own; each test failed before its fix unless
it says otherwise."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from tests.fakellm import API_KEY, MODEL, FakeLlm, fake_llm_fixture  # noqa: F401
from tests.helpers import content, say
from wxbot.config import DEFAULT_SYSTEM_PROMPT
from wxbot.dialog.handlers.query import DONT_KNOW
from wxbot.i18n import translate
from wxbot.llm import fallback
from wxbot.llm.client import ChatClient, Completion, LlmError, Refused
from wxbot.llm.models import LlmAnswer, Memory

MESSAGES = [{"role": "system", "content": "你是客服"}, {"role": "user", "content": "你好"}]
PARTIAL = "关于这个问题，我可以告诉你其中的细节是"  # what came before the filter cut in

# HTTP 400 bodies of refused prompts, as each provider sends them
DASHSCOPE_400 = {  # Qwen, DashScope compatible mode
    "error": {
        "code": "data_inspection_failed",
        "param": None,
        "message": "Input data may contain inappropriate content.",
        "type": "data_inspection_failed",
    },
    "id": "chatcmpl-5b3c",
    "request_id": "5b3c0c5e-0000-0000-0000-000000000000",
}
AZURE_400 = {
    "error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's"
        " content management policy. Please modify your prompt and retry.",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {
                "hate": {"filtered": False, "severity": "safe"},
                "violence": {"filtered": True, "severity": "medium"},
            },
        },
    }
}
MOONSHOT_400 = {
    "error": {
        "message": "The request was rejected because it was considered high risk",
        "type": "content_filter",
    }
}
DEEPSEEK_400 = {
    "error": {
        "message": "Content Exists Risk",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_request_error",
    }
}
ZHIPU_400 = {
    "error": {
        "code": "1301",
        "message": "系统检测到输入或生成内容可能包含不安全或敏感内容，请您避免输入易产生敏感内容的提示语。",
    }
}
OPENAI_REFUSAL = {"content": None, "refusal": "I'm sorry, but I can't help with that request."}

REFUSALS = [
    pytest.param(("finish", "content_filter", PARTIAL), "finish_reason", id="openai-partial"),
    pytest.param(("finish", "content_filter", None), "finish_reason", id="azure-null"),
    pytest.param(("finish", "sensitive", PARTIAL), "finish_reason", id="zhipu-hunyuan"),
    pytest.param(("message", OPENAI_REFUSAL), "refusal", id="openai-refusal"),
    pytest.param(("error", 400, DASHSCOPE_400), "error", id="dashscope-400"),
    pytest.param(("error", 400, AZURE_400), "error", id="azure-400"),
    pytest.param(("error", 400, MOONSHOT_400), "error", id="moonshot-400"),
    pytest.param(("error", 400, DEEPSEEK_400), "error", id="deepseek-400"),
    pytest.param(("error", 400, ZHIPU_400), "error", id="zhipu-400"),
    pytest.param(("error", 200, DASHSCOPE_400), "error", id="gateway-200"),  # error sent as 200
]


def client(fake: FakeLlm) -> ChatClient:
    return ChatClient(fake.url, MODEL, API_KEY, 256, 1.0, 5.0)


# --- the client -------------------------------------------------------------------------------


@pytest.mark.parametrize("step, source", REFUSALS)
def test_refusals_come_back_as_refused_without_the_partial_text(
    fake_llm: FakeLlm, step: tuple[Any, ...], source: str
) -> None:
    fake_llm.script.append(step)
    result = client(fake_llm).complete(MESSAGES)
    assert isinstance(result, Refused) and result.source == source
    assert PARTIAL not in result.reason and "inappropriate" not in result.reason
    assert len(fake_llm.requests) == 1  # not sent again


def test_a_refusal_after_partial_text_is_billed(fake_llm: FakeLlm) -> None:
    fake_llm.script.append(("finish", "content_filter", PARTIAL))
    result = client(fake_llm).complete(MESSAGES)
    assert isinstance(result, Refused)
    assert (result.prompt_tokens, result.completion_tokens) == (6, len(PARTIAL))


def test_other_http_errors_name_the_providers_code_not_its_message(fake_llm: FakeLlm) -> None:
    # OpenAI's answer to a prompt too long: the operator learns why, not just "HTTP 400"
    too_long = {
        "error": {
            "message": "This model's maximum context length is 8192 tokens. 你好",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    }
    fake_llm.script += [
        ("error", 400, too_long),
        ("error", 404, {"error": {"code": "x y\n"}}),
        ("error", 200, {"error": {"code": "server_busy", "message": "稍后再试"}}),
    ]
    with pytest.raises(LlmError) as caught:
        client(fake_llm).complete(MESSAGES)
    assert caught.value.reason == "HTTP 400 (context_length_exceeded)"
    with pytest.raises(LlmError) as caught:  # a code unfit for a log line is left out
        client(fake_llm).complete(MESSAGES)
    assert caught.value.reason == "HTTP 404"
    with pytest.raises(LlmError) as caught:  # a gateway that sends its errors with 200
        client(fake_llm).complete(MESSAGES)
    assert caught.value.reason == "HTTP 200 with an error (server_busy)"


@pytest.mark.parametrize("finish", ["insufficient_system_resource", "network_error", "abort"])
def test_an_answer_that_broke_off_is_not_shown_as_complete(fake_llm: FakeLlm, finish) -> None:  # type: ignore[no-untyped-def]
    # DeepSeek under load, Zhipu's inference errors, vLLM's aborted requests
    fake_llm.script.append(("finish", finish, PARTIAL))
    with pytest.raises(LlmError, match="broke off"):
        client(fake_llm).complete(MESSAGES)


def test_reasoning_content_is_never_the_answer(fake_llm: FakeLlm) -> None:
    # DeepSeek-reasoner and Qwen3 send their thinking in reasoning_content (passed before too)
    fake_llm.script.append(("message", {"content": "答案", "reasoning_content": "先想一想"}))
    done = client(fake_llm).complete(MESSAGES)
    assert isinstance(done, Completion) and done.text == "答案"
    # all of max_tokens spent thinking: content null; reported as an empty answer
    fake_llm.script.append(("message", {"content": None, "reasoning_content": "想"}, "length"))
    with pytest.raises(LlmError, match="empty answer"):
        client(fake_llm).complete(MESSAGES)


def test_markdown_becomes_plain_text(fake_llm: FakeLlm) -> None:
    fake_llm.script.append(("content", "### 退款\n**注意：**7 天内可退。\n\n- 原路退回\n- 1–5 天"))
    done = client(fake_llm).complete(MESSAGES)
    assert isinstance(done, Completion)
    assert done.text == "退款\n注意：7 天内可退。\n\n• 原路退回\n• 1–5 天"


@pytest.mark.parametrize("markup", ["---", "```\n```", "** **", "> ", "<think>嗯</think>\n---"])
def test_an_answer_of_markup_alone_is_empty(fake_llm: FakeLlm, markup: str) -> None:
    fake_llm.script.append(("content", markup))
    with pytest.raises(LlmError, match="empty answer"):
        client(fake_llm).complete(MESSAGES)


def test_the_default_prompt_asks_for_plain_text() -> None:  # new sentence (no old failure)
    assert "Markdown" in DEFAULT_SYSTEM_PROMPT and "纯文本" in DEFAULT_SYSTEM_PROMPT


# --- through the bot --------------------------------------------------------------------------


@pytest.fixture
def llm_bot(make_app, fake_llm: FakeLlm):  # type: ignore[no-untyped-def]
    app = make_app(**fake_llm.settings(llm_rate=0, llm_daily_tokens=0))
    return app.extensions["wxbot.bot"]


def refusals(source: str) -> float:
    return REGISTRY.get_sample_value("wxbot_llm_refusals_total", {"source": source}) or 0.0


@pytest.mark.parametrize("step, source", REFUSALS)
def test_a_refused_question_gets_a_polite_cannot_answer(
    llm_bot, fake_llm, caplog, step, source
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    before = refusals(source)
    fake_llm.script.append(step)
    question = "告诉我怎么做一件坏事"
    reply = content(say(llm_bot, "o_u", question))
    assert reply == fallback.CANNOT_ANSWER  # not the partial text, not DONT_KNOW or APOLOGY
    assert len(fake_llm.requests) == 1  # not retried
    with llm_bot.engine.connect() as conn:
        row = conn.execute(select(Memory.__table__).where(Memory.openid == "o_u")).one()
        kept = conn.execute(select(LlmAnswer.__table__)).all()
    assert (row.calls, row.failures) == (1, 0) and kept == []  # a call, not a failure
    assert refusals(source) == before + 1  # counted on its own
    declined = [r for r in caplog.records if "declined" in r.getMessage()]
    assert len(declined) == 1 and declined[0].levelno == logging.WARNING
    assert all(r.exc_info is None for r in caplog.records)  # no traceback
    for secret in (API_KEY, question, PARTIAL, "inappropriate", "敏感内容"):
        assert secret not in caplog.text
    assert content(say(llm_bot, "o_u", "那退款怎么办")).startswith("LLM答：")  # no pause


def test_the_cannot_answer_reply_speaks_the_users_language(llm_bot, fake_llm) -> None:  # type: ignore[no-untyped-def]
    fake_llm.script.append(("error", 400, DASHSCOPE_400))
    reply = content(say(llm_bot, "o_en", "Tell me how to do something terrible"))
    assert reply == translate(fallback.CANNOT_ANSWER, "en") != fallback.CANNOT_ANSWER


def test_a_markdown_answer_reaches_wechat_and_the_kept_answers_as_plain_text(
    llm_bot, fake_llm
) -> None:  # type: ignore[no-untyped-def]
    fake_llm.answer = lambda messages: (
        "## 营业时间\n\n| 门店 | 时间 |\n|---|---|\n| 线下门店 | 10:00–22:00 |\n\n"
        "详见[门店列表](https://example.com/stores)。"
    )
    plain = (
        "营业时间\n\n门店：线下门店；时间：10:00–22:00\n\n详见门店列表 https://example.com/stores。"
    )
    assert content(say(llm_bot, "o_u", "你们几点开门")) == plain
    with llm_bot.engine.connect() as conn:
        assert conn.execute(select(LlmAnswer.answer)).scalars().all() == [plain]


def test_an_answer_of_markup_alone_is_dont_know_not_an_empty_message(llm_bot, fake_llm) -> None:  # type: ignore[no-untyped-def]
    fake_llm.script.append(("content", "---\n\n**  **"))
    assert content(say(llm_bot, "o_u", "火星上有信号吗")) == DONT_KNOW
