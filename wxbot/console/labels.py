"""Chinese words for what the code calls by English names: states, sources, refusals,
languages, slot types, funnel events."""

from __future__ import annotations

import re
from typing import Any

from wxbot.i18n import LANGUAGE_NAMES

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
SOURCES = {
    "chat": "聊天教学",
    "api": "接口",
    "import": "文件导入",
    "console": "管理后台",
    "starter": "内置",
}
SLOT_TYPES = {
    "phone": "手机号",
    "digits": "数字",
    "pattern": "格式匹配",
    "choice": "选项",
    "text": "文字",
    "sms_code": "短信验证码",
}
FUNNEL = {  # wxbot.flows.stats' events
    "entered": "进入",
    "filled": "填好",
    "completed": "完成",
    "cancelled": "取消",
    "handed_off": "转人工",
    "failed": "失败",
    "timed_out": "超时离开",
    "in_progress": "进行中",
}
ANY_LANGUAGE = "不限语言"
HTTP_ERRORS = {
    400: "请求有误。",
    401: "请先登录。",
    403: "没有权限。",
    404: "页面不存在。",
    405: "不支持这种请求方式。",
    409: "与已有内容冲突。",
    412: "内容在你打开之后被修改过：请刷新页面再试。",
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
    (
        r"entry (\d+) changed since it was read.*",
        r"条目 #\1 在你打开之后被修改过，没有保存：请刷新页面，看过现在的内容再改。",
    ),
    (r"no unanswered question (\d+).*", "这个未答问题已经不在列表里（可能刚被回答或忽略）。"),
    (r"no session for '(.+)'", r"用户 \1 没有会话记录。"),
    (
        r"an entry keeps at least one question; delete the entry instead",
        "条目至少要保留一个问题；不要了请删除整个条目。",
    ),
    (r"entry (\d+) has no question ['\"](.+)['\"]", r"条目 #\1 没有问题「\2」（可能刚被删除）。"),
    (r"unknown language ['\"](.*)['\"].*", r"不支持的语言「\1」：请从列表里选。"),
    (r"no learned question (\d+)", "这个学到的问法已经不在了（可能刚被撤销）。"),
    (r"no LLM answer (\d+)", r"大模型回答 #\1 不存在（提问的用户可能已被删除）。"),
    (r"already promoted to knowledge entry (\d+)", r"这个回答已经加入知识库：条目 #\1。"),
    (r"the search is longer than (\d+) characters", r"搜索词不能超过 \1 个字。"),
    (
        r"history_rounds must be a whole number from 1 to (\d+)",
        r"历史轮数必须是 1 到 \1 之间的整数（留空用默认值）。",
    ),
    # wxbot.qa.synonyms
    (r'"words" must be a list of strings.*', "同义词必须是文字。"),
    (r"the word ['\"](.+)['\"] has no letters or digits", r"词「\1」里没有文字或数字。"),
    (r"the word ['\"](.+)['\"] is longer than (\d+) characters", r"词「\1」不能超过 \2 个字。"),
    (
        r"a synonym group needs at least two different words",
        "一组同义词至少要有两个不同的词（用空格或逗号分开）。",
    ),
    (r"at most (\d+) words per group", r"每组最多 \1 个词。"),
    (r"no synonym group (\d+)", r"同义词组 #\1 不存在（可能刚被删除）。"),
    (
        r"synonym group (\d+) changed since it was read.*",
        r"同义词组 #\1 在你打开之后被修改过，没有保存：请刷新页面，看过现在的词再改。",
    ),
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
    # which encoding (wxbot.qa.formats.encoding)
    (
        r"not UTF-8 or GB18030 \(byte (\d+)\); save the file as UTF-8",
        r"既不是 UTF-8 也不是 GBK/GB18030 编码（第 \1 字节）：请另存为 UTF-8。",
    ),
    (
        r"not (.+) \(byte (\d+)\) although it starts with a .+ byte order mark; save the file as UTF-8",
        r"文件开头标明是 \1 编码，但第 \2 字节不是：请另存为 UTF-8。",
    ),
    (r"UTF-32 text; save the file as UTF-8", "不能读取 UTF-32 编码的文件：请另存为 UTF-8。"),
    (
        r"a NUL character \(is it UTF-16 without a byte order mark\?\); save the file as UTF-8",
        "文件里有 NUL 字符（可能是不带 BOM 的 UTF-16）：请另存为 UTF-8。",
    ),
    # Excel workbooks (wxbot.qa.formats.xlsx_file, xlsx_scan); some name no row ("file: ...")
    (
        r"(?:.+: )?an old \.xls workbook, or one protected by a password.*",
        "这是旧版 .xls 工作簿或设了密码的工作簿：请在 Excel 或 WPS 里另存为 .xlsx（不设密码）或 CSV。",
    ),
    (
        r"(?:.+: )?not an Excel \.xlsx workbook \(not a zip file\).*",
        "不是 Excel .xlsx 工作簿：CSV 或文本文件请使用对应的扩展名（.csv、.txt）。",
    ),
    (r"(?:.+: )?not an Excel \.xlsx workbook \((.*)\)", r"不是 Excel .xlsx 工作簿（\1）。"),
    (r"(?:.+: )?a damaged \.xlsx file.*", "文件已损坏，不是有效的 .xlsx。"),
    (
        r"(?:.+: )?the workbook unpacks to more than (\d+) MB.*",
        r"工作簿解压后超过 \1 MB：请拆分，或另存为 CSV。",
    ),
    (r"(?:.+: )?the workbook has no worksheet", "工作簿里没有工作表。"),
    (r"(?:.+: )?the sheet '(.*)' is empty", r"工作表「\1」是空的。"),
    (
        r"(?:.+: )?the first row must be a header; .*",
        "第一行必须是表头，列名为 问题、答案、相似问法、语言（或 question、answer、similar、language）。",
    ),
    (
        r"column ([A-Z]+) of the header row has no name; .*",
        r"表头的 \1 列没有列名：列名应为 问题、答案、相似问法 或 语言。",
    ),
    (
        r"column ([A-Z]+): unknown column '(.*)'; .*",
        r"表头的 \1 列「\2」不是可识别的列名：应为 问题、答案、相似问法 或 语言。",
    ),
    (
        r"the header needs a question column and one answer column; .*",
        "表头需要「问题」列和一个「答案」列。",
    ),
    (
        r"expected \d+ columns \(.*\), found a value in column ([A-Z]+); .*",
        r"\1 列有内容，但表头没有这一列：请在表头写上列名，或清空它。",
    ),
    (
        r"cell ([A-Z]+\d+) holds a formula without a saved result; .*",
        r"单元格 \1 是公式，但文件里没有保存计算结果：请用 Excel 或 WPS 打开并保存一次（或粘贴为数值）。",
    ),
    (r"cell ([A-Z]+\d+) holds the error (.+)", r"单元格 \1 的值是错误 \2。"),
    (r"question\(s\) without an A: line", "有 Q: 问题但没有 A: 答案。"),
    (r"A: line without a Q: line before it", "A: 答案前面没有 Q: 问题。"),
]


def source(name: str) -> str:
    return SOURCES.get(name, name)


def language(code: str | None) -> str:
    """A language as the catalogue names it (in its own script), or 不限语言."""
    if not code:
        return ANY_LANGUAGE
    return f"{LANGUAGE_NAMES[code]}（{code}）" if code in LANGUAGE_NAMES else code


def flow_state(name: str, flows: Any) -> str | None:
    """A business flow's waiting state: which flow and which step (None: not a flow's)."""
    found = getattr(flows, "by_state", {}).get(name)
    if found is None:
        return None
    flow, index = found
    return f"流程 {flow.name}：等待 {flow.steps[index].slot}"


def reason(text: str) -> str:
    for pattern, chinese in _REASONS:
        match = re.fullmatch(pattern, text)
        if match:
            return match.expand(chinese)
    return text
