"""Chinese words for what the code calls by English names: states, sources, refusals."""

from __future__ import annotations

import re

STATES = {
    "WAIT_QUERY": "空闲（等待提问）",
    "WAIT_LEARN": "教学中",
    "WAIT_CONFIRM": "等待确认覆盖",
    "WAIT_WEATHER_CITY": "天气：等待城市",
    "WAIT_WEATHER_CHOICE": "天气：选择城市",
    "WAIT_MUSIC_INFO": "点歌：等待歌名",
    "WAIT_PHONE_NUMBER": "绑定手机：等待号码",
    "WAIT_PHONE_CODE": "绑定手机：等待验证码",
}
SOURCES = {"chat": "聊天教学", "api": "接口", "import": "文件导入", "console": "管理后台"}
HTTP_ERRORS = {
    400: "请求有误。",
    401: "请先登录。",
    403: "没有权限。",
    404: "页面不存在。",
    405: "不支持这种请求方式。",
    409: "与已有内容冲突。",
    413: "文件太大。",
    422: "输入有误。",
    429: "尝试次数过多，请稍后再试。",
    500: "服务器出错了，详情见服务器日志。",
}
# The refusals of wxbot.qa.writer and wxbot.admin.ops, in Chinese (others are shown as is).
_REASONS = [
    (r"the question is empty", "问题不能为空。"),
    (r"the answer is empty", "答案不能为空。"),
    (r"a question must be a string", "问题必须是文字。"),
    (r"the answer must be a string", "答案必须是文字。"),
    (r"the question is longer than (\d+) characters", r"问题不能超过 \1 个字。"),
    (r"the answer is longer than (\d+) characters", r"答案不能超过 \1 个字。"),
    (r"the question (.+) has no letters or digits", r"问题 \1 里没有文字或数字。"),
    (r"give at least one question", "至少要有一个问题。"),
    (r"at most (\d+) questions per entry", r"每个条目最多 \1 个问题。"),
    (r"the question '(.+)' already belongs to entry (\d+)", r"问题「\1」已经属于条目 #\2。"),
    (r'the question "(.+)" already belongs to entry (\d+)', r"问题「\1」已经属于条目 #\2。"),
    (r"no (?:knowledge )?entry (\d+)", r"条目 #\1 不存在（可能刚被删除）。"),
    (r"no unanswered question (\d+).*", "这个未答问题已经不在列表里（可能刚被回答或忽略）。"),
    (r"no session for '(.+)'", r"用户 \1 没有会话记录。"),
    # the importer's (wxbot.qa.formats and importer), shown per bad row
    (
        r"expected 2 columns \(question,answer\), found (\d+)",
        r"应为 2 列（问题,答案），实际 \1 列。",
    ),
    (
        r"expected 2 columns \(question,answer\), found (\d+); quote answers that contain commas",
        r"应为 2 列（问题,答案），实际 \1 列：答案里有逗号时请加英文双引号。",
    ),
    (r"invalid JSON \((.+)\)", r"不是有效的 JSON（\1）。"),
    (r'missing "answer"', "缺少 answer（答案）。"),
    (r"the question (.+) is already at .+:(\d+)", r"问题 \1 与第 \2 行重复。"),
    (
        r"not UTF-8 \(byte (\d+)\); save the file as UTF-8",
        r"不是 UTF-8 编码（第 \1 字节）：请另存为 UTF-8。",
    ),
    (r"question\(s\) without an A: line", "有 Q: 问题但没有 A: 答案。"),
    (r"A: line without a Q: line before it", "A: 答案前面没有 Q: 问题。"),
]


def state(name: str) -> str:
    return STATES.get(name, name)


def source(name: str) -> str:
    return SOURCES.get(name, name)


def reason(text: str) -> str:
    for pattern, chinese in _REASONS:
        match = re.fullmatch(pattern, text)
        if match:
            return match.expand(chinese)
    return text
