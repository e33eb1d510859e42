"""Answers, round 2 (issue 9): the starter synonym groups of existing databases brought in
line with knowledge/synonyms.txt (over-broad groups narrowed, general vocabulary added).

Only starter groups nobody edited (``updated_at == created_at``) are changed; groups an
operator added or edited are left alone. A database created after this change already has
the new list (0005 reads the file): then nothing here matches and nothing changes. The lists
are written out here, not read from the file, so this revision means the same thing forever.

Revision ID: 0011_answers2
Revises: 0010_merge
"""

import time

import sqlalchemy as sa
from alembic import op

revision = "0011_answers2"
down_revision = "0010_merge"
branch_labels = None
depends_on = None

# old group (as stored: words joined by "|") -> new group, or None to drop it
CHANGED = {
    "几点|什么时候|什么时间|多久|几时": "几点|什么时候|什么时间|几时",
    "营业|上班|开门|营业时间|上班时间|工作时间|办公时间": (
        "上班|开门|营业时间|上班时间|工作时间|办公时间|开门时间"
    ),
    "电话|热线|号码|联系方式|客服电话|联系电话": "电话|热线|联系方式|客服电话|联系电话",
    "手机号|手机号码|电话号码|预留手机号|手机": "手机号|手机号码|预留手机号",
    "附近|周边|旁边|最近": "附近|周边|旁边",
    "身份证|证件|身份证件": "身份证|居民身份证|身份证件",
    "额度|限额|上限|最高": "额度|限额|上限",
    "客服|售后": None,
    "身份证|居民身份证": None,
}
ADDED = [
    "登录不了|登不上|登不进去|无法登录|登陆不了",
    "通知|提醒|消息提醒|消息通知",
    "孩子|小孩|宝宝|小朋友|儿童",
    "老人|老年人|长辈",
    "补贴|补助|津贴",
    "异地|外地|外省",
    "房子|房屋|住房",
    "商品|东西|货品|宝贝",
    "驾照|驾驶证|驾驶执照",
    "年检|年审",
    "个税|个人所得税",
    "养老金|退休金|退休工资",
    "离职|辞职|辞工",
    "良民证|无犯罪记录证明|无犯罪证明",
]

synonyms = sa.table(
    "kb_synonyms",
    sa.column("id", sa.Integer),
    sa.column("words", sa.Text),
    sa.column("source", sa.String),
    sa.column("created_at", sa.Double),
    sa.column("updated_at", sa.Double),
)


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(
            synonyms.c.id, synonyms.c.words, synonyms.c.created_at, synonyms.c.updated_at
        ).where(synonyms.c.source == "starter")
    ).all()
    have = {frozenset(r.words.split("|")) for r in conn.execute(sa.select(synonyms.c.words))}
    now = time.time()
    changed = False
    for row in rows:
        if row.words not in CHANGED or row.updated_at != row.created_at:
            continue
        new = CHANGED[row.words]
        if new is None or frozenset(new.split("|")) in have:
            conn.execute(sa.delete(synonyms).where(synonyms.c.id == row.id))
        else:
            conn.execute(
                sa.update(synonyms)
                .where(synonyms.c.id == row.id)
                .values(words=new, created_at=now, updated_at=now)
            )
            have.add(frozenset(new.split("|")))
        changed = True
    added = [words for words in ADDED if frozenset(words.split("|")) not in have]
    if added:
        conn.execute(
            sa.insert(synonyms),
            [
                {"words": w, "source": "starter", "created_at": now, "updated_at": now}
                for w in added
            ],
        )
        changed = True
    if changed:  # every process re-indexes: groups change how questions are indexed
        op.execute("UPDATE kb_meta SET version = version + 1 WHERE id = 1")
        op.execute(
            sa.text(
                "INSERT INTO kb_changes (version, entry_id, changed_at) "
                "SELECT version, NULL, :now FROM kb_meta WHERE id = 1"
            ).bindparams(now=now)
        )


def downgrade() -> None:
    pass  # a data fix: the narrowed groups stay (edit them through the API if need be)
