"""Markdown in LLM answers to WeChat plain text (wxbot/llm/plaintext.py): the markup goes,
the words stay, and ordinary text that merely looks like markup is left alone."""

from __future__ import annotations

import pytest

from wxbot.llm.plaintext import to_plain_text

CONVERTED = [
    ("**粗体**和*斜体*", "粗体和斜体"),
    ("这是**重点**内容", "这是重点内容"),
    ("**注意：**请先登录。", "注意：请先登录。"),  # CommonMark leaves this ** unclosed
    ("请看**「重点」**内容", "请看「重点」内容"),
    ("The **Python** way, *really*.", "The Python way, really."),
    ("__init__ 是**方法**", "__init__ 是方法"),
    ("### 标题\n正文", "标题\n正文"),
    ("标题\n===\n正文", "标题\n正文"),
    ("- 一\n- 二\n  - 二点一\n* 三", "• 一\n• 二\n  • 二点一\n• 三"),
    ("1. 第一\n2. 第二\n3. 第三", "1. 第一\n2. 第二\n3. 第三"),
    ("1. 第一\n1. 第二", "1. 第一\n2. 第二"),  # Markdown's auto-numbering, as it renders
    ("3) 第三\n4) 第四", "3) 第三\n4) 第四"),
    ("[官网](https://example.com/a_b)", "官网 https://example.com/a_b"),
    ("详见[官网](https://example.com)了解", "详见官网 https://example.com 了解"),
    ("详见[官网](https://example.com)。", "详见官网 https://example.com。"),
    ("[https://example.com](https://example.com)", "https://example.com"),
    ("<https://example.com/x>", "https://example.com/x"),
    ("[写信](mailto:kf@example.com)", "写信 kf@example.com"),
    ("[目录](#toc)", "目录"),  # cannot be opened from WeChat
    ("![示意图](https://example.com/a.png)", "示意图 https://example.com/a.png"),
    ('<a href="https://example.com/x">点这里</a>领取', "点这里 https://example.com/x 领取"),
    ("```python\nprint('**x**')\nif a_b:\n    pass\n```", "print('**x**')\nif a_b:\n    pass"),
    ("用 `pip install wxbot` 安装", "用 pip install wxbot 安装"),
    ("| 名称 | 价格 |\n|---|---|\n| 苹果 | ¥5 |\n| 梨 | |", "名称：苹果；价格：¥5\n名称：梨"),
    ("| Name | Price |\n|:--|--:|\n| Apple | $5 |", "Name: Apple; Price: $5"),
    ("> 引用的话\n> 第二行", "引用的话\n第二行"),
    ("上文\n\n---\n\n下文", "上文\n\n下文"),
    ("~~原价 100~~ 现价 80", "原价 100 现价 80"),
    (r"\*号键和\# 号", "*号键和# 号"),
    ("第一行<br>第二行", "第一行\n第二行"),
    ("1. 步骤\n\n   说明\n2. 下一步", "1. 步骤\n\n说明\n2. 下一步"),
    ("a\n\n\n\nb", "a\n\nb"),
]

UNTOUCHED = [
    "2*3=6",
    "2*3*4=24，2**10=1024",
    "a_b_c 和 snake_case_name",
    "C# 和 F# 都可以",
    "按*号键返回，按#号键确认",
    "按*号键，然后按*号",
    "*号键，¥5 - ¥10，^_^ 你好 ^_^，2*3*4=24",  # the first star would pair with a later one
    "*号键",
    "价格 ¥5 - ¥10，运费 0-5 元",
    "1. 先说结论。\n其实没什么。",
    "2019. 那一年",
    "开心 ^_^ 谢谢 ^_^",
    "x_1 + x_2 = 3，a*b = b*a",
    "（1）第一点；（2）第二点。",
    "你好！有什么可以帮你？",
    ">= 18 岁可以办理\n> 3 天未到账请联系客服",
    "5~10 个工作日",
    "https://example.com/a_b_c?x=1&y=2",
    "AT&T, 1 < 2 > 0",
    "C:\\Users\\name",
]


@pytest.mark.parametrize(("markdown", "plain"), CONVERTED)
def test_markup_becomes_plain_text(markdown: str, plain: str) -> None:
    assert to_plain_text(markdown) == plain


@pytest.mark.parametrize("text", UNTOUCHED)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert to_plain_text(text) == text


def test_fenced_code_is_verbatim_even_where_a_comparison_would_be_escaped() -> None:
    assert to_plain_text("```\n>= 5\n**x**\n```") == ">= 5\n**x**"


def test_a_typical_chat_answer() -> None:
    answer = (
        "## 退款流程\n\n"
        "您好！退款分以下几步：\n\n"
        "1. **提交申请**：在「我的-订单」点击*申请退款*。\n"
        "2. **等待审核**：一般 1–3 个工作日。\n\n"
        "> 注意：优惠券不退。\n\n"
        "如有疑问，请访问[帮助中心](https://help.example.com)。"
    )
    assert to_plain_text(answer) == (
        "退款流程\n\n"
        "您好！退款分以下几步：\n\n"
        "1. 提交申请：在「我的-订单」点击申请退款。\n"
        "2. 等待审核：一般 1–3 个工作日。\n\n"
        "注意：优惠券不退。\n\n"
        "如有疑问，请访问帮助中心 https://help.example.com。"
    )
