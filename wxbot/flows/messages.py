"""What the flow runner says by itself (catalogue texts: translated in wxbot/i18n/locales),
and the words it understands in every language."""

from __future__ import annotations

from wxbot.dialog.words import NO_WORDS, YES_WORDS
from wxbot.i18n import N_, NP_

__all__ = ["NO_WORDS", "YES_WORDS"]  # with the texts below: what the runner says and hears

CONFIRM = N_("你填写的是「{value}」，对吗？请回复「是」或「否」。")
CONFIRM_AGAIN = N_("请回复「是」确认，或回复「否」重新填写。")
MENU = N_("请回复序号或选项名称：\n{menu}")
EXAMPLE = N_("例如：{example}")
TRIES_LEFT = NP_(
    "还可以再试 {left} 次，之后会为你转接人工客服。",
    "还可以再试 {left} 次，之后会为你转接人工客服。",
    "left",
)
WEBHOOK_FAILED = N_("抱歉，暂时无法完成办理，请稍后再试，或发「人工」联系客服。")
WEBHOOK_DONE = N_("已提交，谢谢！")

# sms_code steps (a step's `messages:` may override each of these)
SENT = N_("验证码已发送到 {phone}，5 分钟内有效，请回复 6 位验证码。没收到可发「重发」。")
SEND_FAILED = N_("短信发送失败，请发「重发」再试一次，或发「取消」退出。")
NOT_SENT = N_("短信服务暂时不可用，请稍后再试。")
WRONG = NP_("验证码不正确，还可以再试 {left} 次。", "验证码不正确，还可以再试 {left} 次。", "left")
TOO_MANY = N_("验证码错误次数过多，本次操作已结束。")
EXPIRED = N_("验证码已过期，请发「重发」获取新的验证码。")
WAIT_RESEND = NP_(
    "验证码刚刚发出，请 {seconds} 秒后再发「重发」。",
    "验证码刚刚发出，请 {seconds} 秒后再发「重发」。",
    "seconds",
)
LOST = N_("验证码已失效，请重新输入手机号。")
# the limits on texting codes (wxbot.flows.phone: USER_DAILY, NUMBER_DAILY, NUMBER_BURST)
USER_DAILY_LIMIT = N_("你今天获取验证码的次数已达上限，请明天再试。如需帮助，请发「人工」。")
NUMBER_DAILY_LIMIT = N_(
    "这个手机号今天接收验证码的次数已达上限，请明天再试。如需帮助，请发「人工」。"
)
NUMBER_BUSY = NP_(
    "验证码发送太频繁，请 {seconds} 秒后再发「重发」。",
    "验证码发送太频繁，请 {seconds} 秒后再发「重发」。",
    "seconds",
)
# a new number typed at the code step (before what happens to the code: sent, or the wait)
NUMBER_CHANGED = N_("手机号已改为 {phone}，之前的验证码不再有效。")
# a `text` step's answer over its `max_length` (before the step's `invalid` text or prompt)
TOO_LONG = NP_(
    "这段文字有 {length} 个字，请控制在 {most} 个字以内。",
    "这段文字有 {length} 个字，请控制在 {most} 个字以内。",
    "most",
)
SMS_DEFAULTS = {
    "sent": SENT,
    "send_failed": SEND_FAILED,
    "wrong": WRONG,
    "too_many": TOO_MANY,
    "expired": EXPIRED,
    "lost": LOST,
}

RESEND_WORDS = frozenset(
    {"重发", "重新发送", "重发验证码", "resend", "ส่งใหม่", "ipadala muli", "ulitin", "再送"}
)
