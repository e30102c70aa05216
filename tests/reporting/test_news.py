"""The editor's Markdown: articles, 简讯 and footer, kept as plain text."""

from __future__ import annotations

from cityhealth.reporting.news import Article, News, parse_news


def test_sections_become_articles_briefs_and_footer() -> None:
    news = parse_news(
        "## 六月全市预约挂号逾 51 万人次\n\n本月号源仍集中在少数大型医院，\n社区号源的可见度有待提高。\n\n"
        "第二段 second\nline.\n\n## 简 讯\n\n- 第一条\n- 第二条，\n  续行。\n\n"
        "## 页脚\n\n地址：南京市紫竹林3号\n邮编：210003\n"
    )
    assert news == News(
        articles=(Article("六月全市预约挂号逾 51 万人次", (
            "本月号源仍集中在少数大型医院，社区号源的可见度有待提高。", "第二段 second line.",
        )),),
        briefs=("第一条", "第二条，续行。"),
        footer=("地址：南京市紫竹林3号", "邮编：210003"),
    )


def test_a_bare_list_is_news_in_brief() -> None:
    assert parse_news("- 甲\n* 乙\n") == News(briefs=("甲", "乙"))


def test_an_empty_file_has_no_editorial_content() -> None:
    assert parse_news("") == News()


def test_markup_is_kept_as_text() -> None:
    news = parse_news("## <b>标题</b>\n\n<img src=x onerror=alert(1)>\n")
    assert news.articles == (Article("<b>标题</b>", ("<img src=x onerror=alert(1)>",)),)
