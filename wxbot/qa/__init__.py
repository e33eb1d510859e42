"""The teachable knowledge base: store (models, writer, importer), matcher (text, index), and
the per-process ``KnowledgeBase`` that keeps an in-memory index fresh from the database."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from wxbot.qa import models  # noqa: F401 - registers the kb_* tables on the shared Base
from wxbot.qa.embeddings import EmbeddingClient, Semantic
from wxbot.qa.fusion import LOCAL_MODEL_FUSION, parse_fusion
from wxbot.qa.kb import KnowledgeBase, Lookup, Match
from wxbot.qa.local_model import LOCAL_URL, LocalEmbedder, LocalModelMissing

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from wxbot.config import Settings

__all__ = ["KnowledgeBase", "Lookup", "Match", "build_knowledge_base", "build_semantic"]

log = logging.getLogger(__name__)


def build_semantic(settings: Settings, engine: Engine | None) -> Semantic | None:
    """Semantic retrieval when WXBOT_EMBEDDING_URL is set: an embedding service, or ``local``
    for the bundled sentence encoder (either needs numpy)."""
    if not settings.embedding_url:
        return None
    fusion = parse_fusion(settings.embedding_fusion) if settings.embedding_fusion else None
    if settings.embedding_url.strip().lower() == LOCAL_URL:
        try:
            embedder = LocalEmbedder()
        except LocalModelMissing as exc:
            log.warning("%s; answering without semantic retrieval", exc)
            return None
        embedder.load()
        return Semantic(embedder, engine, settings.embedding_timeout, fusion or LOCAL_MODEL_FUSION)
    try:
        import numpy  # noqa: F401
    except ImportError:
        log.warning(
            "WXBOT_EMBEDDING_URL is set but numpy is missing: pip install 'wxbot[embeddings]'; "
            "answering without semantic retrieval"
        )
        return None
    client = EmbeddingClient(
        settings.embedding_url, settings.embedding_model, settings.embedding_api_key
    )
    return Semantic(client, engine, settings.embedding_timeout, fusion)


def build_knowledge_base(settings: Settings, engine: Engine, load: bool = True) -> KnowledgeBase:
    """The process's knowledge base, loaded now (jieba's dictionary and the index) so no
    request pays for it, unless ``load`` is false (then ``load_at_start`` later, or the
    first request); when the schema does not exist yet the first request loads it."""
    kb = KnowledgeBase(engine, semantic=build_semantic(settings, engine))
    if load:
        kb.load_at_start()
    kb.hits.flush_at_exit()  # batched hits
    return kb
